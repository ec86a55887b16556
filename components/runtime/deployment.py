"""What every component shares: the stack's naming, labels, log rotation, provider and runtime,
and the one call that turns a workload into engine objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.runtime.workload import ServiceContainer, Workload
from config.models import LogRotation


@dataclass(frozen=True)
class UpstreamReplaced:
    """An upstream replaced in a deploy, and the client that resolves its name only when it
    loads its configuration (the proxy)."""

    resource_name: str
    """Name of the command that follows the change."""
    upstream: Workload
    client_name: str
    """The client's workload name, without the prefix."""
    reload_script: str
    """Shell script, run in the client, that makes it load its configuration again."""
    watch_seconds: int
    """How often a client that watches the addresses itself looks."""
    parent: pulumi.Resource
    depends_on: Sequence[pulumi.Resource]


class Runtime(Protocol):
    """Turns workloads into engine objects and answers what scripts need to know about them."""

    keeps_stopped_workloads: bool
    """Whether a workload a script stops stays stopped until the deploy replaces it, as an
    offline upgrade of its data needs (one engine); Swarm starts a new task instead."""

    def workload(self, deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> Workload:
        """Declare the long-running workload `spec` with the policies every service gets."""
        ...

    def network_args(self) -> dict[str, object]:
        """The driver arguments of a component's private network."""
        ...

    def network_ignored_changes(self) -> list[str] | None:
        """Network fields the engine rewrites and the provider reads back, not to compare."""
        ...

    def runnable(self, image: docker.RemoteImage) -> pulumi.Output[str]:
        """What a workload runs from a pulled image."""
        ...

    def running_container(self, name: str) -> str:
        """Shell words naming the running container of the workload `name` (full name)."""
        ...

    def settled(self, name: str, timeout: int = 600) -> str:
        """Shell script that waits until an update of the workload `name` has finished."""
        ...

    def exists(self, name: str) -> str:
        """Shell command that succeeds when the workload `name` exists."""
        ...

    def entry_command(self, command: list[str] | None, address_watch: str, foreground: str) -> list[str] | None:
        """The command of a workload that resolves its upstreams' names only when it loads its
        configuration: `command` as given, or with `address_watch` (a shell loop that reloads it
        when an address changes) beside `foreground`, where upstreams move without it being told."""
        ...

    def upstreams_environment(self, upstreams: Sequence[Workload]) -> pulumi.Output[list[str]] | None:
        """Environment of such a workload that replaces it along with its `upstreams`, where a
        replaced upstream comes back at a new address it would not learn otherwise."""
        ...

    def after_upstream_replaced(self, deployment: Deployment, change: UpstreamReplaced) -> command.local.Command:
        """A command that makes the change's client use its upstream's new address once the
        upstream is replaced: run the reload script in it, or wait until its own watch has seen
        the address."""
        ...


@dataclass(frozen=True)
class Deployment:
    """One stack's naming, labels, log rotation, Docker provider and runtime."""

    project: str
    stack: str
    prefix: str
    log_rotation: LogRotation
    protect_data: bool
    runtime: Runtime
    docker_host: str | None = None
    provider: docker.Provider | None = None
    platform: str | None = None
    """The Docker host's platform (e.g. linux/arm64) images are pulled and built for; None: the default."""

    def name(self, suffix: str) -> str:
        """Name of a Docker object of this stack, e.g. `selfhosted-prod-postgres`."""
        return f"{self.prefix}-{suffix}"

    def label_values(self, component: str, role: str) -> dict[str, str]:
        """Labels that say which stack, component and role a container belongs to."""
        values = {"stack": self.stack, "component": component, "role": role}
        return {f"{self.project}.{key}": value for key, value in values.items()}

    def labels(self, component: str, role: str) -> list[docker.ContainerLabelArgs]:
        return [docker.ContainerLabelArgs(label=label, value=value) for label, value in self.label_values(component, role).items()]

    def log_options(self) -> dict[str, str]:
        """Options of the json-file log driver: rotated at max_size, max_file files kept."""
        return {"max-size": self.log_rotation.max_size, "max-file": str(self.log_rotation.max_file)}


def service_container(deployment: Deployment, spec: ServiceContainer, opts: pulumi.ResourceOptions) -> Workload:
    """Declare a long-running workload with the policies every service gets (see the runtimes).

    It restarts unless stopped, is limited in memory, CPU and processes, is confined by its
    role's security policy (all capabilities dropped but the policy's, no new privileges, a
    read-only root filesystem with tmpfs where the service writes), rotates its json-file log,
    carries the stack's labels, and the deploy waits until it is healthy. Every value is written
    in the form the provider reads back, so an unchanged program changes nothing on the next
    `pulumi up`.
    """
    if spec.uploads and spec.security.read_only:
        raise ValueError(f"{spec.name}: Docker refuses uploads into a read-only root filesystem; use file_directories")
    return deployment.runtime.workload(deployment, spec, opts)
