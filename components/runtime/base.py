"""What every runtime does: the interface components program against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pulumi
import pulumi_command as command
import pulumi_docker as docker

if TYPE_CHECKING:
    from components.runtime.deployment import Deployment
    from components.runtime.workload import ServiceContainer, Workload


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
