"""Docker Swarm: every workload is a service of one task, placed by the nodes' labels."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.rendering.swarm import node_label
from components.runtime.commands import docker_script
from components.runtime.deployment import Deployment, UpstreamReplaced
from components.runtime.files import prepare_files
from components.runtime.workload import (
    ServiceContainer,
    Workload,
    attachments,
    go_short_duration,
    healthcheck_args,
    revision,
    tmpfs_options,
)
from config.hardening import SecurityPolicy


class SwarmRuntime:
    """Services of a Docker Swarm whose manager is the stack's Docker host."""

    keeps_stopped_workloads = False

    def __init__(self, nodes: pulumi.Resource, name_key: pulumi.Output[str]) -> None:
        self.nodes = nodes
        """The nodes' labels, which every service's placement needs."""
        self.name_key = name_key
        """The stack's key for the names of its secrets and configs (see _content_name)."""

    def workload(self, deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> Workload:
        """The service of one task that runs `spec` on Swarm, under the same limits, confinement and
        health check as the container would.

        Files become Docker secrets (computed or in a file directory) and configs (plain text); they
        are immutable, so each is named after its content and a change rolls the service onto the
        new one. A stateless service starts its new task before the old one stops; a data service or
        one with published ports stops first. Swarm rolls back an update whose task does not get
        healthy, and replaces a task that becomes unhealthy. Names resolve to the tasks' own
        addresses (`dnsrr`), which the proxy reloads to learn, as with containers; ports are
        published on the node running the task (host mode), every address of it: a port the
        container publishes on one address only (a loopback port) is not published at all.
        """
        if spec.gpus is not None:
            raise ValueError(f"{spec.name}: a Swarm service gets no GPUs from the provider")
        check = spec.healthcheck
        stateless = spec.runs_on == "app"
        files = self._files(deployment, spec, opts)
        # The data node is the engine the program talks to: a one-time container there hands new
        # volumes to the service's user, as with containers.
        owners = [prepare_files(deployment, replace(spec, file_directories=[]), opts)[0]] if spec.owned_paths else []
        labels = deployment.label_values(spec.component, spec.role)
        update = {
            "parallelism": 1,
            "order": "start-first" if stateless else "stop-first",
            # Watch a new task for one round of health checks before the update counts as done.
            "monitor": go_short_duration(check.interval * (check.retries + 1) if check else 10),
            "max_failure_ratio": "0",
        }
        return docker.Service(
            spec.name,
            name=deployment.name(spec.name),
            labels=[docker.ServiceLabelArgs(label=label, value=value) for label, value in labels.items()],
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=_container_spec(spec, labels, files),
                resources=_resources(spec),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s", max_attempts=0, window="0s"),
                placement=docker.ServiceTaskSpecPlacementArgs(
                    constraints=[f"node.labels.{node_label(deployment.prefix, spec.runs_on)}==true"]
                ),
                # By id: the provider reads the id back, and a name would differ from it on every up.
                networks_advanceds=[
                    docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id, aliases=aliases)
                    for network, aliases in attachments(spec)
                ]
                or None,
                log_driver=docker.ServiceTaskSpecLogDriverArgs(name="json-file", options=deployment.log_options()),
            ),
            update_config=docker.ServiceUpdateConfigArgs(failure_action="rollback", **update),
            rollback_config=docker.ServiceRollbackConfigArgs(failure_action="pause", **update),
            endpoint_spec=_endpoint_spec(spec),
            converge_config=docker.ServiceConvergeConfigArgs(delay="1s", timeout=go_short_duration(spec.wait_timeout)),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[*(file.resource for file in files), *owners, self.nodes])
            ),
        )

    def network_args(self) -> dict[str, object]:
        # Across the nodes, its traffic encrypted (IPsec), and open to one-time containers (an
        # operator's `docker run --network`) as a bridge is.
        return {"driver": "overlay", "attachable": True, "options": {"encrypted": ""}}

    def network_ignored_changes(self) -> list[str] | None:
        # Docker adds its VXLAN ids to an overlay's options, which the provider reads back:
        # compared, they would replace the network on every up.
        return ["options"]

    def runnable(self, image: docker.RemoteImage) -> pulumi.Output[str]:
        # Its registry digest (`name@sha256:...`), which every node pulls the same, or its
        # reference where the image has no registry digest.
        return pulumi.Output.all(image.repo_digest, image.name).apply(lambda refs: refs[0] or refs[1])

    def running_container(self, name: str) -> str:
        # The service's running task on this engine.
        return f'"$(docker ps -q --filter label=com.docker.swarm.service.name={name} --filter status=running | head -n 1)"'

    def settled(self, name: str, timeout: int = 600) -> str:
        # The provider may report an update done while the old task still runs: wait until the
        # update (or its rollback) Swarm is rolling has finished.
        quoted = shlex.quote(name)
        return (
            "waited=0; while :; do "
            f"state=\"$(docker service inspect -f '{{{{if .UpdateStatus}}}}{{{{.UpdateStatus.State}}}}{{{{end}}}}' {quoted})\"; "
            'case "$state" in updating|rollback_started) ;; *) break ;; esac; '
            f'if [ "$waited" -ge {timeout} ]; then echo "{name} is still $state after {timeout} s" >&2; exit 1; fi; '
            "sleep 1; waited=$((waited + 1)); done; "
        )

    def exists(self, name: str) -> str:
        return f"docker service inspect {shlex.quote(name)} >/dev/null 2>&1"

    def entry_command(self, command: list[str] | None, address_watch: str, foreground: str) -> list[str] | None:
        # A replaced task comes back at a new address: the workload watches the addresses itself.
        return ["/bin/sh", "-c", f"{address_watch} & exec {foreground}"]

    def upstreams_environment(self, upstreams: Sequence[Workload]) -> pulumi.Output[list[str]] | None:
        return None

    def after_upstream_replaced(self, deployment: Deployment, change: UpstreamReplaced) -> command.local.Command:
        # Once the rolling update has finished, the client's watch has two looks at the address.
        wait = change.upstream.name.apply(lambda name: f"{self.settled(name)}sleep {2 * change.watch_seconds}")
        return docker_script(
            change.resource_name, deployment, wait, change.parent, [revision(change.upstream)], depends_on=change.depends_on
        )

    def _files(self, deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> list[_SwarmFile]:
        """The service's files as Docker secrets and configs: the files of its file directories are
        its user's, 0400, as with containers; uploads are root's, with their permissions. Content the
        program computes (an Output, which may hold a secret) is a secret; plain text is a config."""
        uid, _, gid = (spec.security.user or "0:0").partition(":")
        wanted = [
            (f"{directory.path}/{name}", content, uid, gid or uid, 0o400)
            for directory in spec.file_directories
            for name, content in sorted(directory.files.items())
        ] + [
            (upload.file, upload.content, "0", "0", int(upload.permissions or "0644", 8))
            for upload in spec.uploads
        ]
        files = []
        for path, content, owner, group, mode in wanted:
            name = f"{spec.name}{path.replace('/', '-').replace('.', '-')}"
            data = pulumi.Output.from_input(content).apply(lambda text: base64.b64encode(text.encode()).decode())
            object_name = pulumi.Output.all(self.name_key, data).apply(
                lambda values, name=name: _content_name(deployment.name(name), values[0], values[1])
            )
            if isinstance(content, str):
                resource: docker.Secret | docker.ServiceConfig = docker.ServiceConfig(name, name=object_name, data=data, opts=opts)
            else:
                resource = docker.Secret(
                    name,
                    name=object_name,
                    data=data,
                    labels=[docker.SecretLabelArgs(label=f"{deployment.project}.stack", value=deployment.stack)],
                    opts=opts,
                )
            files.append(_SwarmFile(resource, path, owner, group, mode))
        return files


MIB = 1024 * 1024


@dataclass(frozen=True)
class _SwarmFile:
    """One file of a service on Swarm: a Docker secret (`private`) or config, and where it appears."""

    resource: docker.Secret | docker.ServiceConfig
    path: str
    uid: str
    gid: str
    mode: int

    @property
    def private(self) -> bool:
        return isinstance(self.resource, docker.Secret)

    def secret_reference(self) -> docker.ServiceTaskSpecContainerSpecSecretArgs:
        return docker.ServiceTaskSpecContainerSpecSecretArgs(
            secret_id=self.resource.id, secret_name=self.resource.name,
            file_name=self.path, file_uid=self.uid, file_gid=self.gid, file_mode=self.mode,
        )

    def config_reference(self) -> docker.ServiceTaskSpecContainerSpecConfigArgs:
        return docker.ServiceTaskSpecContainerSpecConfigArgs(
            config_id=self.resource.id, config_name=self.resource.name,
            file_name=self.path, file_uid=self.uid, file_gid=self.gid, file_mode=self.mode,
        )


def _container_spec(
    spec: ServiceContainer, labels: dict[str, str], files: list[_SwarmFile]
) -> docker.ServiceTaskSpecContainerSpecArgs:
    """The task's container: the same command, user, confinement, health check and files as the container would have."""
    check = spec.healthcheck
    policy = spec.security
    return docker.ServiceTaskSpecContainerSpecArgs(
        image=spec.image,
        commands=spec.entrypoint,
        args=spec.command,
        env=None if spec.envs is None else pulumi.Output.from_input(spec.envs).apply(_environment_map),
        user=policy.user,
        read_only=policy.read_only,
        cap_drops=["ALL"],
        cap_adds=list(policy.capabilities) or None,
        sysctl=dict(policy.sysctls) or None,
        healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(**healthcheck_args(check, go_short_duration)),
        mounts=[*(_mount(volume) for volume in spec.volumes), *_tmpfs(policy)],
        secrets=[file.secret_reference() for file in files if file.private] or None,
        configs=[file.config_reference() for file in files if not file.private] or None,
        stop_grace_period=go_short_duration(spec.stop_grace_seconds),
        labels=[docker.ServiceTaskSpecContainerSpecLabelArgs(label=label, value=value) for label, value in labels.items()],
    )


def _resources(spec: ServiceContainer) -> docker.ServiceTaskSpecResourcesArgs:
    """The task's memory limit and reservation and its CPU cap."""
    return docker.ServiceTaskSpecResourcesArgs(
        limits=docker.ServiceTaskSpecResourcesLimitsArgs(
            memory_bytes=spec.limits.memory_mb * MIB,
            nano_cpus=round(spec.limits.cpus * 1e9) if spec.limits.cpus is not None else None,
        ),
        reservation=docker.ServiceTaskSpecResourcesReservationArgs(memory_bytes=spec.limits.reservation_mb * MIB)
        if spec.limits.reservation_mb
        else None,
    )


def _endpoint_spec(spec: ServiceContainer) -> docker.ServiceEndpointSpecArgs:
    """Names resolve to the task's own address; ports are published on the node that runs it."""
    return docker.ServiceEndpointSpecArgs(
        mode="dnsrr",
        ports=[
            docker.ServiceEndpointSpecPortArgs(
                target_port=port.internal, published_port=port.external, publish_mode="host", protocol=port.protocol or "tcp"
            )
            for port in spec.ports
            if port.ip in (None, "0.0.0.0")
        ]
        or None,
    )


def _content_name(name: str, key: str, data: str) -> str:
    """A secret's or config's name: its object's name cut to fit Docker's 64 characters, and a
    digest of the whole name and the content, keyed with the stack's own key, so that a change of
    content is a new name, two files never share one, and a name tells nothing of a password."""
    digest = hmac.new(key.encode(), f"{name}\n{data}".encode(), hashlib.sha256).hexdigest()
    return f"{name[:47]}-{digest[:16]}"


def _environment_map(items: Sequence[str] | None) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items or [])


def _mount(volume: docker.ContainerVolumeArgs) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume" if volume.volume_name is not None else "bind",
        source=volume.volume_name if volume.volume_name is not None else volume.host_path,
        target=volume.container_path,
        read_only=volume.read_only,
    )


def _tmpfs(policy: SecurityPolicy) -> list[docker.ServiceTaskSpecContainerSpecMountArgs]:
    """The role's tmpfs on Swarm. A service's tmpfs mount takes the owner and mode of the image's
    directory, whatever mode it is given (moby/moby#39466, moby/swarmkit#3226), so a directory of
    root's stays closed to the service's user: for a role with its own user, each task gets an
    anonymous volume of the local driver that mounts a tmpfs with that user's owner instead."""
    if policy.user is None:
        return [docker.ServiceTaskSpecContainerSpecMountArgs(type="tmpfs", target=path) for path in policy.tmpfs]
    return [
        docker.ServiceTaskSpecContainerSpecMountArgs(
            type="volume",
            target=path,
            volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
                driver_name="local",
                driver_options={"type": "tmpfs", "device": "tmpfs", "o": f"{tmpfs_options(policy)},nosuid,nodev,noexec"},
            ),
        )
        for path in policy.tmpfs
    ]
