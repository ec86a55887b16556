"""The one way every component builds a container (or, on Docker Swarm, a service): limits,
confinement, health check, restart, log rotation, labels."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.rendering.swarm import node_label
from config.hardening import SecurityPolicy
from config.models import LogRotation
from config.profiles import ContainerLimits
from config.types import docker_cpus


@dataclass(frozen=True)
class Deployment:
    """What every component shares: object naming, labels, log rotation and the Docker provider."""

    project: str
    stack: str
    prefix: str
    log_rotation: LogRotation
    protect_data: bool
    docker_host: str | None = None
    provider: docker.Provider | None = None
    platform: str | None = None
    """The Docker host's platform (e.g. linux/arm64) images are pulled and built for; None: the default."""
    orchestrator: Literal["containers", "swarm"] = "containers"
    """Containers on one engine, or services of a Docker Swarm whose manager `docker_host` is."""
    swarm_nodes: pulumi.Resource | None = None
    """On Swarm: the nodes' labels, which every service's placement needs."""
    swarm_name_key: pulumi.Output[str] | None = None
    """On Swarm: the stack's key for the names of its secrets and configs (see _content_name)."""

    @property
    def swarm(self) -> bool:
        return self.orchestrator == "swarm"

    def name(self, suffix: str) -> str:
        """Name of a Docker object of this stack, e.g. `selfhosted-prod-postgres`."""
        return f"{self.prefix}-{suffix}"

    def label_values(self, component: str, role: str) -> dict[str, str]:
        """Labels that say which stack, component and role a container belongs to."""
        values = {"stack": self.stack, "component": component, "role": role}
        return {f"{self.project}.{key}": value for key, value in values.items()}

    def labels(self, component: str, role: str) -> list[docker.ContainerLabelArgs]:
        return [docker.ContainerLabelArgs(label=label, value=value) for label, value in self.label_values(component, role).items()]

    def running_container(self, name: str) -> str:
        """Shell words naming the running container of the object `name` (full name): the
        container itself, or on Swarm the service's running task on this engine."""
        if not self.swarm:
            return shlex.quote(name)
        return f'"$(docker ps -q --filter label=com.docker.swarm.service.name={name} --filter status=running | head -n 1)"'

    def settled(self, name: str, timeout: int = 600) -> str:
        """Shell script that waits until the service `name` has finished an update (or its
        rollback) Swarm is rolling: the provider may report an update done while the old task
        still runs. Nothing to wait for with containers."""
        if not self.swarm:
            return ""
        quoted = shlex.quote(name)
        return (
            "waited=0; while :; do "
            f"state=\"$(docker service inspect -f '{{{{if .UpdateStatus}}}}{{{{.UpdateStatus.State}}}}{{{{end}}}}' {quoted})\"; "
            'case "$state" in updating|rollback_started) ;; *) break ;; esac; '
            f'if [ "$waited" -ge {timeout} ]; then echo "{name} is still $state after {timeout} s" >&2; exit 1; fi; '
            "sleep 1; waited=$((waited + 1)); done; "
        )

    def exists(self, name: str) -> str:
        """Shell command that succeeds when the container (or on Swarm, the service) `name` exists."""
        kind = "service" if self.swarm else "container"
        return f"docker {kind} inspect {shlex.quote(name)} >/dev/null 2>&1"


@dataclass(frozen=True)
class HealthCheck:
    """A Docker health check; `test` is in Docker's form (`["CMD", ...]` or `["CMD-SHELL", "..."]`).

    Docker runs the first check one interval after start, so the interval also bounds how soon a
    deploy that waits for health can go on; the checks themselves cost next to nothing.
    Durations are whole seconds.
    """

    test: list[str]
    interval: int = 10
    timeout: int = 10
    retries: int = 3
    start_period: int = 30


def go_duration(seconds: int) -> str:
    """Seconds as Go prints a duration ("10s", "1m0s", "1h2m3s"), the form the Docker provider stores.

    Written in any other form ("60s"), the stored health check differs from the program's on
    every `pulumi up`.
    """
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def go_short_duration(seconds: int) -> str:
    """Seconds as the provider stores a service's durations ("10s", "1m", "1m30s", "1h"): Go's
    form without a trailing zero unit. In Go's full form ("1m0s") the stored service differs
    from the program's on every `pulumi up`."""
    text = go_duration(seconds)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text


@dataclass(frozen=True)
class FileDirectory:
    """Files a service reads (configuration, passwords), in one directory of their own.

    The provider uploads files into a container's root filesystem, which Docker refuses for a
    read-only one, and always as root. So the files go on a volume of their own, written by a
    short-lived container of the service's image that hands them to the service's user (files
    0400, directory 0500); the service mounts that volume read-only at `path`.
    """

    name: str
    """Short name, part of the volume's name (`<prefix>-<container>-<name>`)."""
    path: str
    """Where the service sees the files."""
    files: Mapping[str, pulumi.Input[str]]
    """File name -> content."""


@dataclass(frozen=True)
class ServiceContainer:
    """One container of a component, before the shared policies are applied.

    Every service has a health check: Docker (and the healer, and Swarm) can only act on what
    it checks, and the deploy waits for it.
    """

    component: str
    role: str
    name: str
    image: pulumi.Input[str]
    limits: ContainerLimits
    security: SecurityPolicy
    healthcheck: HealthCheck
    network: docker.Network | None
    """The component's network, where the container answers to `aliases`; None: no network at all."""
    aliases: list[str]
    envs: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    ports: list[docker.ContainerPortArgs] = field(default_factory=list)
    volumes: list[docker.ContainerVolumeArgs] = field(default_factory=list)
    uploads: list[docker.ContainerUploadArgs] = field(default_factory=list)
    """Files put into the root filesystem before start: only for a role whose root filesystem is writable."""
    file_directories: list[FileDirectory] = field(default_factory=list)
    owned_paths: list[str] = field(default_factory=list)
    """Mount paths of `volumes` handed to the service's user before it starts (a new volume is root's)."""
    extra_networks: list[docker.Network] = field(default_factory=list)
    extra_aliases: list[str] = field(default_factory=list)
    """Names the container also answers to on the extra networks."""
    wait_timeout: int = 300
    runs_on: Literal["data", "app", "ingress"] = "data"
    """On Swarm, the nodes it may run on: the one node for data (where its volumes are), any
    node for apps (stateless: each node has its own copy of a volume it mounts), or the nodes
    that publish the proxy's ports (see SwarmSettings)."""
    stop_grace_seconds: int = 10
    """Seconds between the image's stop signal and SIGKILL whenever the container stops: removed
    or replaced by a deploy (the provider's default is 0, an immediate kill), and stopped or
    restarted by Docker (its default is 10). Data services need longer."""


Workload = docker.Container | docker.Service
"""What runs a service: a container, or on Swarm a service of one task."""


def service_container(deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> Workload:
    """Declare a long-running container (on Swarm: a service) with the policies every service gets.

    The container restarts unless stopped, is limited in memory, CPU and processes, is confined
    by its role's security policy (all capabilities dropped but the policy's, no new privileges,
    a read-only root filesystem with tmpfs where the service writes), rotates its json-file log,
    carries the stack's labels, and the deploy waits until it is healthy. Every value is written
    in the form the provider reads back, so an unchanged program changes nothing on the next
    `pulumi up`.
    """
    if spec.uploads and spec.security.read_only:
        raise ValueError(f"{spec.name}: Docker refuses uploads into a read-only root filesystem; use file_directories")
    if deployment.swarm:
        return _swarm_service(deployment, spec, opts)
    check = spec.healthcheck
    policy = spec.security
    volumes = list(spec.volumes)
    labels = deployment.labels(spec.component, spec.role)
    depends_on: list[pulumi.Resource] = []
    if spec.file_directories or spec.owned_paths:
        files, file_volumes = _prepare_files(deployment, spec, opts)
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
            docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=aliases) for network, aliases in _attachments(spec)
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
        **_confinement(policy),
        tmpfs={path: _tmpfs_options(policy) for path in policy.tmpfs} or None,
        ulimits=[docker.ContainerUlimitArgs(name=limit.name, soft=limit.soft, hard=limit.hard) for limit in policy.ulimits],
        sysctls=dict(policy.sysctls) or None,
        healthcheck=docker.ContainerHealthcheckArgs(**_healthcheck(check)),
        destroy_grace_seconds=spec.stop_grace_seconds,
        stop_timeout=spec.stop_grace_seconds,
        log_driver="json-file",
        log_opts=_log_opts(deployment),
        labels=labels,
        wait=True,
        wait_timeout=spec.wait_timeout,
        # The provider's update leaves a running container's health check as it was: a changed
        # check must replace the container to take effect.
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(replace_on_changes=["healthcheck"], depends_on=depends_on)
        ),
    )
    _limit_processes(deployment, spec.name, container, policy.pids_limit, opts)
    return container


def _attachments(spec: ServiceContainer) -> list[tuple[docker.Network, list[str] | None]]:
    """The networks the service joins, each with the names it answers to there (none: no network)."""
    if spec.network is None:
        return []
    return [(spec.network, spec.aliases), *((network, spec.extra_aliases or None) for network in spec.extra_networks)]


def _healthcheck(check: HealthCheck, duration: Callable[[int], str] = go_duration) -> dict[str, object]:
    return {
        "tests": check.test,
        "interval": duration(check.interval),
        "timeout": duration(check.timeout),
        "retries": check.retries,
        "start_period": duration(check.start_period),
    }


def revision(workload: Workload) -> pulumi.Output[str]:
    """What changes whenever the workload runs something new: a container's id (a changed
    container is a new one), or a digest of a service's id and task (updated in place)."""
    if isinstance(workload, docker.Container):
        return workload.id
    return pulumi.Output.all(workload.id, workload.task_spec).apply(
        lambda values: hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
    )


def _confinement(policy: SecurityPolicy) -> dict[str, object]:
    """The user, capabilities, privileges and root filesystem of a container under `policy`."""
    return {
        "user": policy.user,
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(policy.capabilities) or None),
        "security_opts": ["no-new-privileges"],
        "read_only": policy.read_only,
    }


def _tmpfs_options(policy: SecurityPolicy) -> str:
    """Mount options of the role's tmpfs: its user's alone (Docker's default copies the image
    directory's owner and mode, often root's 0755), or Docker's default for the image's own user."""
    if policy.user is None:
        return ""
    uid, _, gid = policy.user.partition(":")
    return f"uid={uid},gid={gid or uid},mode=0700"


def _log_opts(deployment: Deployment) -> dict[str, str]:
    return {"max-size": deployment.log_rotation.max_size, "max-file": str(deployment.log_rotation.max_file)}


def _swarm_service(deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> docker.Service:
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
    check = spec.healthcheck
    policy = spec.security
    stateless = spec.runs_on == "app"
    files = _swarm_files(deployment, spec, opts)
    # The data node is the engine the program talks to: a one-time container there hands new
    # volumes to the service's user, as with containers.
    owners = [_prepare_files(deployment, replace(spec, file_directories=[]), opts)[0]] if spec.owned_paths else []
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
            container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                image=spec.image,
                commands=spec.entrypoint,
                args=spec.command,
                env=None if spec.envs is None else pulumi.Output.from_input(spec.envs).apply(_environment_map),
                user=policy.user,
                read_only=policy.read_only,
                cap_drops=["ALL"],
                cap_adds=list(policy.capabilities) or None,
                sysctl=dict(policy.sysctls) or None,
                healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(**_healthcheck(check, go_short_duration)),
                mounts=[*(_swarm_mount(volume) for volume in spec.volumes), *_swarm_tmpfs(policy)],
                secrets=[file.secret_reference() for file in files if file.private] or None,
                configs=[file.config_reference() for file in files if not file.private] or None,
                stop_grace_period=go_short_duration(spec.stop_grace_seconds),
                labels=[docker.ServiceTaskSpecContainerSpecLabelArgs(label=label, value=value) for label, value in labels.items()],
            ),
            resources=docker.ServiceTaskSpecResourcesArgs(
                limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                    memory_bytes=spec.limits.memory_mb * MIB,
                    nano_cpus=round(spec.limits.cpus * 1e9) if spec.limits.cpus is not None else None,
                ),
                reservation=docker.ServiceTaskSpecResourcesReservationArgs(memory_bytes=spec.limits.reservation_mb * MIB)
                if spec.limits.reservation_mb
                else None,
            ),
            restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="5s", max_attempts=0, window="0s"),
            placement=docker.ServiceTaskSpecPlacementArgs(
                constraints=[f"node.labels.{node_label(deployment.prefix, spec.runs_on)}==true"]
            ),
            # By id: the provider reads the id back, and a name would differ from it on every up.
            networks_advanceds=[
                docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id, aliases=aliases)
                for network, aliases in _attachments(spec)
            ]
            or None,
            log_driver=docker.ServiceTaskSpecLogDriverArgs(name="json-file", options=_log_opts(deployment)),
        ),
        update_config=docker.ServiceUpdateConfigArgs(failure_action="rollback", **update),
        rollback_config=docker.ServiceRollbackConfigArgs(failure_action="pause", **update),
        endpoint_spec=docker.ServiceEndpointSpecArgs(
            mode="dnsrr",
            ports=[
                docker.ServiceEndpointSpecPortArgs(
                    target_port=port.internal, published_port=port.external, publish_mode="host", protocol=port.protocol or "tcp"
                )
                for port in spec.ports
                if port.ip in (None, "0.0.0.0")
            ]
            or None,
        ),
        converge_config=docker.ServiceConvergeConfigArgs(delay="1s", timeout=go_short_duration(spec.wait_timeout)),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                depends_on=[*(file.resource for file in files), *owners, *([deployment.swarm_nodes] if deployment.swarm_nodes else [])]
            ),
        ),
    )


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


def _swarm_files(deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> list[_SwarmFile]:
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
        object_name = pulumi.Output.all(deployment.swarm_name_key or "", data).apply(
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


def _content_name(name: str, key: str, data: str) -> str:
    """A secret's or config's name: its object's name cut to fit Docker's 64 characters, and a
    digest of the whole name and the content, keyed with the stack's own key, so that a change of
    content is a new name, two files never share one, and a name tells nothing of a password."""
    digest = hmac.new(key.encode(), f"{name}\n{data}".encode(), hashlib.sha256).hexdigest()
    return f"{name[:47]}-{digest[:16]}"


def _environment_map(items: Sequence[str] | None) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items or [])


def _swarm_mount(volume: docker.ContainerVolumeArgs) -> docker.ServiceTaskSpecContainerSpecMountArgs:
    return docker.ServiceTaskSpecContainerSpecMountArgs(
        type="volume" if volume.volume_name is not None else "bind",
        source=volume.volume_name if volume.volume_name is not None else volume.host_path,
        target=volume.container_path,
        read_only=volume.read_only,
    )


def _swarm_tmpfs(policy: SecurityPolicy) -> list[docker.ServiceTaskSpecContainerSpecMountArgs]:
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
                driver_options={"type": "tmpfs", "device": "tmpfs", "o": f"{_tmpfs_options(policy)},nosuid,nodev,noexec"},
            ),
        )
        for path in policy.tmpfs
    ]


# What the preparing container may do as root: write into directories and files of another
# user (DAC_OVERRIDE, FOWNER) and hand them over (CHOWN). Nothing else.
PREPARE_POLICY = SecurityPolicy(user="0:0", capabilities=("CHOWN", "DAC_OVERRIDE", "FOWNER"), read_only=False, tmpfs=())
STAGING_DIR = "/staging"


def _prepare_files(
    deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions
) -> tuple[docker.Container, list[docker.Volume]]:
    """A one-time container that writes the service's files onto their volumes and hands volumes to its user.

    It runs once per change of the files (and is then replaced), without network, and exits.
    """
    owner = spec.security.user or "0:0"
    volumes = [
        _volume(deployment, f"{spec.name}-{directory.name}", opts, protect=False) for directory in spec.file_directories
    ]
    uploads = [
        docker.ContainerUploadArgs(file=f"{STAGING_DIR}{directory.path}/{name}", content=content, permissions="0400")
        for directory in spec.file_directories
        for name, content in sorted(directory.files.items())
    ]
    return (
        docker.Container(
            f"{spec.name}-files",
            name=deployment.name(f"{spec.name}-files"),
            image=spec.image,
            entrypoints=["/bin/sh", "-c", render_prepare_script(spec.file_directories, spec.owned_paths, owner)],
            volumes=[
                *(
                    docker.ContainerVolumeArgs(volume_name=volume.name, container_path=directory.path)
                    for directory, volume in zip(spec.file_directories, volumes)
                ),
                *(volume for volume in spec.volumes if volume.container_path in spec.owned_paths),
            ],
            uploads=uploads,
            network_mode="none",
            memory=64,
            memory_swap=128,
            cpus=docker_cpus(0.5),
            **_confinement(PREPARE_POLICY),
            log_driver="json-file",
            log_opts=_log_opts(deployment),
            labels=deployment.labels(spec.component, f"{spec.role}-files"),
            # Waits for the exit; it is not meant to keep running.
            attach=True,
            must_run=False,
            opts=opts,
        ),
        volumes,
    )


def render_prepare_script(directories: Sequence[FileDirectory], owned_paths: Sequence[str], owner: str) -> str:
    """The shell script of the preparing container: exactly the given files, 0400, owned by `owner`."""
    lines = ["set -eu"]
    for directory in directories:
        target = shlex.quote(directory.path)
        staged = shlex.quote(f"{STAGING_DIR}{directory.path}")
        lines += [
            f"find {target} -mindepth 1 -delete",
            f"cp -p {staged}/* {target}/",
            f"chown -R {owner} {target}",
            f"chmod 0400 {target}/*",
            f"chmod 0500 {target}",
        ]
    for path in owned_paths:
        lines.append(f"find {shlex.quote(path)} \\! -user {owner.split(':')[0]} -exec chown {owner} {{}} +")
    return "\n".join(lines)


def _limit_processes(
    deployment: Deployment, name: str, container: docker.Container, pids_limit: int, opts: pulumi.ResourceOptions
) -> command.local.Command:
    """Limit the container's processes (`docker update --pids-limit`) once it runs.

    The provider has no `pids_limit`: Docker's own update sets the limit on the running container
    and keeps it across restarts; a replaced container gets it again (the trigger is its id).
    """
    environment = {"DOCKER_HOST": deployment.docker_host} if deployment.docker_host else None
    return command.local.Command(
        f"{name}-pids-limit",
        create=container.name.apply(lambda container_name: f"docker update --pids-limit {pids_limit} {container_name}"),
        environment=environment,
        triggers=[container.id],
        # Not the Docker provider: the command runs on the deploying machine.
        opts=pulumi.ResourceOptions(parent=opts.parent, depends_on=[container]),
    )


def secret_upload(path: str, content: pulumi.Input[str], permissions: str) -> docker.ContainerUploadArgs:
    """A file holding a secret: its content kept secret in the state, its mode saying who in the container reads it."""
    return docker.ContainerUploadArgs(file=path, content=pulumi.Output.secret(content), permissions=permissions)


def front_network(deployment: Deployment, opts: pulumi.ResourceOptions) -> docker.Network:
    """The proxy's network: the proxy and the containers it serves, never a database, store or the socket."""
    return private_network(deployment, "front", opts)


def fronted(network: docker.Network | None) -> list[docker.Network]:
    """The networks a container the proxy serves joins besides its own: the front one, when there is a proxy."""
    return [network] if network is not None else []


def private_network(deployment: Deployment, component: str, opts: pulumi.ResourceOptions) -> docker.Network:
    """A network of one component (a bridge; on Swarm an encrypted overlay); its services reach
    each other by alias, nothing else joins."""
    return docker.Network(
        f"{component}-network",
        name=deployment.name(component),
        # On Swarm: across the nodes, its traffic encrypted (IPsec), and open to one-time
        # containers (an operator's `docker run --network`) as a bridge is.
        driver="overlay" if deployment.swarm else "bridge",
        attachable=True if deployment.swarm else None,
        options={"encrypted": ""} if deployment.swarm else None,
        labels=[docker.NetworkLabelArgs(label=f"{deployment.project}.stack", value=deployment.stack)],
        # Every field of a network forces replacement, and its name is fixed: the old network must
        # go before the new one can take its name. Docker adds its VXLAN ids to an overlay's
        # options, which the provider reads back: compared, they would replace it on every up.
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(delete_before_replace=True, ignore_changes=["options"] if deployment.swarm else None),
        ),
    )


def data_volume(deployment: Deployment, name: str, opts: pulumi.ResourceOptions) -> docker.Volume:
    """A named volume for data that must outlive its container; protected where the stack says so."""
    return _volume(deployment, name, opts, protect=deployment.protect_data)


def _volume(deployment: Deployment, name: str, opts: pulumi.ResourceOptions, protect: bool) -> docker.Volume:
    return docker.Volume(
        f"{name}-volume",
        name=deployment.name(name),
        labels=[docker.VolumeLabelArgs(label=f"{deployment.project}.stack", value=deployment.stack)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )


def built_image(
    resource_name: str,
    image_name: str,
    context: str,
    opts: pulumi.ResourceOptions,
    build_args: Mapping[str, pulumi.Input[str]] | None = None,
    platform: str | None = None,
) -> pulumi.Output[str]:
    """An image built on the Docker host from a directory with a Dockerfile; never pushed.

    Built for `platform` when given, otherwise for the Docker engine's own platform (the provider
    passes an empty platform to the engine's BuildKit). Returns the reference containers should run: the digest, which changes
    with every rebuild and so replaces the containers, or the name where the engine reports no digest.
    """
    image = docker.Image(
        resource_name,
        image_name=image_name,
        build=docker.DockerBuildArgs(context=context, args=build_args, platform=platform),
        skip_push=True,
        opts=opts,
    )
    return pulumi.Output.all(image.repo_digest, image.image_name).apply(lambda refs: refs[0] or refs[1])


def pulled_image(
    reference: str, resource_name: str, opts: pulumi.ResourceOptions, platform: str | None = None
) -> docker.RemoteImage:
    """An image by reference, for `platform` when given, kept on the host when the stack is destroyed
    (other stacks may share it)."""
    return docker.RemoteImage(
        f"{resource_name}-image", name=reference, keep_locally=True, platform=platform, opts=opts
    )


def runnable(deployment: Deployment, image: docker.RemoteImage) -> pulumi.Output[str]:
    """What a container or service runs from a pulled image: on one engine its id (the image
    pulled there); on Swarm its registry digest (`name@sha256:...`), which every node pulls the
    same, or its reference where the image has no registry digest."""
    if not deployment.swarm:
        return image.image_id
    return pulumi.Output.all(image.repo_digest, image.name).apply(lambda refs: refs[0] or refs[1])


def exec_in_container(
    resource_name: str,
    deployment: Deployment,
    container: Workload,
    argv: list[str],
    environment: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
    stdin: str | None = None,
    triggers: list[pulumi.Input[str]] | None = None,
) -> command.local.Command:
    """Run a one-time setup command inside a running container with the docker CLI.

    It runs on first deploy and again when `triggers` change. Environment values are passed
    by name (`docker exec -e NAME`), so secrets never appear on a command line.
    """
    return command.local.Command(
        resource_name,
        create=container.name.apply(
            lambda name: _docker_exec(deployment.running_container(name), argv, environment, stdin is not None)
        ),
        stdin=stdin,
        environment=_process_environment(deployment, environment),
        triggers=triggers,
        # Not the Docker provider: the command runs on the deploying machine.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[container]),
    )


def exec_in_named_container(
    resource_name: str,
    deployment: Deployment,
    container_name: str,
    argv: list[str],
    parent: pulumi.Resource | None,
    triggers: list[pulumi.Input[str]],
    stdin: pulumi.Input[str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> command.local.Command:
    """Run a command in the container named `container_name` (without the prefix), whichever
    container of that name runs when the command's turn comes: one this deploy has yet to replace,
    or one declared elsewhere in the program.

    It runs when `triggers` change. Where no such container exists yet (the first deploy) there
    is nothing to act on: it says so and succeeds. A container that exists but does not run, or
    a command that fails, fails the deploy before anything that depends on it changes.
    """
    name = deployment.name(container_name)
    script = (
        f"if ! {deployment.exists(name)}; then "
        f"echo '{name} does not exist yet: nothing to do'; exit 0; fi; "
        f"exec {_docker_exec(deployment.running_container(name), argv, {}, stdin is not None)}"
    )
    return docker_script(resource_name, deployment, script, parent, triggers, stdin, depends_on)


def docker_script(
    resource_name: str,
    deployment: Deployment,
    script: pulumi.Input[str],
    parent: pulumi.Resource | None,
    triggers: list[pulumi.Input[str]],
    stdin: pulumi.Input[str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    delete: str | None = None,
) -> command.local.Command:
    """Run a shell script with the docker CLI on the stack's engine when `triggers` change (and
    `delete`, if given, when the command is removed); a failing script fails the deploy before
    anything that depends on it changes."""
    return command.local.Command(
        resource_name,
        create=script,
        delete=delete,
        stdin=stdin,
        environment=_process_environment(deployment, {}),
        triggers=triggers,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def _docker_exec(target: str, argv: list[str], environment: Mapping[str, object], interactive: bool) -> str:
    """`docker exec` in the container `target` names (shell words, see Deployment.running_container)."""
    passed = "".join(f"-e {variable} " for variable in environment)
    return f"docker exec {'-i ' if interactive else ''}{passed}{target} {shlex.join(argv)}"


def _process_environment(deployment: Deployment, environment: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
    process_environment = dict(environment)
    if deployment.docker_host:
        process_environment["DOCKER_HOST"] = deployment.docker_host
    return process_environment
