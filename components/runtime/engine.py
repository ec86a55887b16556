"""One Docker engine: every workload is a container."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.runtime.commands import exec_in_named_container
from components.runtime.deployment import Deployment, UpstreamReplaced
from components.runtime.files import prepare_files
from components.runtime.limits import limit_processes
from components.runtime.workload import (
    ServiceContainer,
    Workload,
    attachments,
    confinement,
    healthcheck_args,
    revision,
    tmpfs_options,
)
from config.types import docker_cpus


class EngineRuntime:
    """Containers on one Docker engine."""

    keeps_stopped_workloads = True

    def workload(self, deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> Workload:
        check = spec.healthcheck
        policy = spec.security
        volumes = list(spec.volumes)
        labels = deployment.labels(spec.component, spec.role)
        depends_on: list[pulumi.Resource] = []
        if spec.file_directories or spec.owned_paths:
            files, file_volumes = prepare_files(deployment, spec, opts)
            volumes += [
                docker.ContainerVolumeArgs(volume_name=volume.name, container_path=directory.path, read_only=True)
                for directory, volume in zip(spec.file_directories, file_volumes)
            ]
            # A new preparation (changed files) replaces the service, which then reads them.
            labels.append(docker.ContainerLabelArgs(label=f"{deployment.project}.files", value=files.id))
            depends_on.append(files)
        container = docker.Container(
            spec.name,
            name=deployment.name(spec.name),
            image=spec.image,
            envs=spec.envs,
            command=spec.command,
            entrypoints=spec.entrypoint,
            ports=spec.ports,
            volumes=volumes,
            uploads=spec.uploads,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=aliases) for network, aliases in attachments(spec)
            ]
            or None,
            network_mode=None if spec.network is not None else "none",
            restart="unless-stopped",
            memory=spec.limits.memory_mb,
            # Docker's default swap allowance (as much swap as memory), stated: left unset, the
            # provider would keep the old allowance when the memory limit is raised in place, and
            # Docker refuses a limit above it.
            memory_swap=2 * spec.limits.memory_mb,
            memory_reservation=spec.limits.reservation_mb,
            cpu_shares=spec.limits.cpu_weight,
            cpus=docker_cpus(spec.limits.cpus) if spec.limits.cpus is not None else None,
            gpus=spec.gpus,
            **confinement(policy),
            tmpfs={path: tmpfs_options(policy) for path in policy.tmpfs} or None,
            ulimits=[docker.ContainerUlimitArgs(name=limit.name, soft=limit.soft, hard=limit.hard) for limit in policy.ulimits],
            sysctls=dict(policy.sysctls) or None,
            healthcheck=docker.ContainerHealthcheckArgs(**healthcheck_args(check)),
            destroy_grace_seconds=spec.stop_grace_seconds,
            stop_timeout=spec.stop_grace_seconds,
            log_driver="json-file",
            log_opts=deployment.log_options(),
            labels=labels,
            wait=True,
            wait_timeout=spec.wait_timeout,
            # The provider's update leaves a running container's health check as it was: a changed
            # check must replace the container to take effect.
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(replace_on_changes=["healthcheck"], depends_on=depends_on)
            ),
        )
        limit_processes(deployment, spec.name, container, policy.pids_limit, opts)
        return container

    def network_args(self) -> dict[str, object]:
        return {"driver": "bridge"}

    def network_ignored_changes(self) -> list[str] | None:
        return None

    def runnable(self, image: docker.RemoteImage) -> pulumi.Output[str]:
        # The image's id: the image pulled on this engine.
        return image.image_id

    def running_container(self, name: str) -> str:
        return shlex.quote(name)

    def settled(self, name: str, timeout: int = 600) -> str:
        # A container is replaced whole before the deploy goes on: nothing to wait for.
        return ""

    def exists(self, name: str) -> str:
        return f"docker container inspect {shlex.quote(name)} >/dev/null 2>&1"

    def entry_command(self, command: list[str] | None, address_watch: str, foreground: str) -> list[str] | None:
        # Upstreams change address only when replaced, which replaces or reloads the client.
        return command

    def upstreams_environment(self, upstreams: Sequence[Workload]) -> pulumi.Output[list[str]] | None:
        return pulumi.Output.all(*(revision(upstream) for upstream in upstreams)).apply(
            lambda ids: [f"UPSTREAM_CONTAINERS={','.join(ids)}"]
        )

    def after_upstream_replaced(self, deployment: Deployment, change: UpstreamReplaced) -> command.local.Command:
        return exec_in_named_container(
            change.resource_name,
            deployment,
            change.client_name,
            ["/bin/sh", "-c", change.reload_script],
            change.parent,
            triggers=[revision(change.upstream)],
            depends_on=change.depends_on,
        )
