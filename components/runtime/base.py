"""What every runtime does: the interface components program against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import pulumi
import pulumi_command as command
import pulumi_docker as docker

if TYPE_CHECKING:
    from components.runtime.deployment import Deployment
    from components.runtime.workload import ServiceContainer, Workload


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

    def after_upstream_replaced(
        self,
        resource_name: str,
        deployment: Deployment,
        upstream: Workload,
        client_name: str,
        reload_script: str,
        watch_seconds: int,
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource],
    ) -> command.local.Command:
        """A command that makes the workload `client_name` use `upstream`'s new address once it
        is replaced: run `reload_script` in it, or wait until its own watch (every
        `watch_seconds`) has seen the address."""
        ...
