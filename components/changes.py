"""Safe changes: what a deploy does before it replaces a container that holds data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

import pulumi
import pulumi_command as command

from components.runtime.commands import exec_in_named_container
from components.runtime.deployment import Deployment, UpstreamReplaced
from components.runtime.workload import ServiceContainer, Workload
from components.rendering.proxy import UPSTREAM_WATCH_SECONDS
from config.types import docker_cpus

BACKUP_CONTAINER = "backup"
"""The backup job's container name (without the prefix)."""
PROXY_CONTAINER = "proxy"
"""The reverse proxy's container name (without the prefix)."""

# Fields of a ServiceContainer that change a running container in place (or nothing at all);
# every other field replaces it. Of the limits, only `cpus` replaces (the CPU weight updates in place).
_IN_PLACE = {"limits", "wait_timeout"}


def replacement_digest(deployment: Deployment, spec: ServiceContainer) -> pulumi.Output[str]:
    """A digest of everything that replaces the container when it changes (secret when any of it is).

    A field left unset (None or empty) is left out, as an unset input is: a field a new release
    adds to ServiceContainer changes no digest, so it runs no backup where the stack does not use
    it. A value that is set always counts, defaults included: a release that changes a default
    changes the digest.
    """
    fields = {
        field.name: _resolvable(value)
        for field in dataclasses.fields(spec)
        if field.name not in _IN_PLACE and not _unset(value := getattr(spec, field.name))
    }
    fields.update(
        name=deployment.name(spec.name),
        network=spec.network.name if spec.network is not None else None,
        extra_networks=[network.name for network in spec.extra_networks],
        cpus=docker_cpus(spec.limits.cpus) if spec.limits.cpus is not None else None,
        log_rotation=deployment.log_rotation.model_dump(),
    )
    return pulumi.Output.from_input(fields).apply(
        lambda resolved: hashlib.sha256(json.dumps(resolved, sort_keys=True, default=vars).encode()).hexdigest()
    )


def _unset(value: object) -> bool:
    return value is None or (isinstance(value, (list, tuple, dict)) and not value)


def _resolvable(value: object) -> object:
    """`value` with its dataclasses (file directories, security policies) as dicts, so that
    `Output.from_input` reaches the Outputs inside them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _resolvable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_resolvable(item) for item in value]
    if isinstance(value, dict):
        return {key: _resolvable(item) for key, item in value.items()}
    return value


class BackupBeforeChanges:
    """One backup per deploy that must succeed before any watched container is replaced.

    Components `watch` the containers that hold data, before they declare them, and make them
    depend on `command`; the program `seal`s it once every component has. The backup runs again
    only when a watched container would be replaced: the command's trigger is a digest of all of
    them. Its archive ends in `-before-change.tar`.
    """

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self._digests: list[pulumi.Output[str]] = []
        trigger, self._resolve = pulumi.deferred_output()
        self.command = exec_in_named_container(
            "backup-before-change",
            deployment,
            BACKUP_CONTAINER,
            ["backup-now", "--before-change"],
            None,
            triggers=[trigger],
        )

    def watch(self, specs: Sequence[ServiceContainer]) -> list[pulumi.Resource]:
        """Back up before any of these is replaced; what their containers must depend on."""
        self._digests += [replacement_digest(self._deployment, spec) for spec in specs]
        return [self.command]

    def seal(self) -> None:
        """Every component has watched its containers: the trigger is known."""
        self._resolve(
            pulumi.Output.all(*self._digests).apply(lambda digests: hashlib.sha256("".join(digests).encode()).hexdigest())
        )


def proxy_reload_after(
    resource_name: str,
    deployment: Deployment,
    container: Workload,
    parent: pulumi.Resource,
    other_upstreams: Sequence[pulumi.Resource] = (),
) -> command.local.Command:
    """nginx re-reads its configuration, and so resolves its upstreams' names again, once this
    container has been replaced and is healthy (nginx resolves them only when it loads its
    configuration). A reload is graceful: requests in progress finish on the old workers.

    nginx refuses a configuration whose upstream name does not resolve, so the reload also waits
    for the proxy's `other_upstreams` (replaced in the same deploy), and where one of them is
    still being replaced by a part of the program declared later, waits until nginx can load its
    configuration (see render_reload_when_loadable).

    Where upstreams move without being replaced (Swarm), the proxy reloads itself when an
    upstream's address changes (see render_upstream_watch): this waits until the rolling update
    has finished and the proxy has had two looks at the new address.
    """
    return deployment.runtime.after_upstream_replaced(
        deployment,
        UpstreamReplaced(
            resource_name=resource_name,
            upstream=container,
            client_name=PROXY_CONTAINER,
            reload_script=render_reload_when_loadable(),
            watch_seconds=UPSTREAM_WATCH_SECONDS,
            parent=parent,
            depends_on=[container, *other_upstreams],
        ),
    )


# As long as a container's own wait for health may take (ServiceContainer.wait_timeout).
RELOAD_DEADLINE_SECONDS = 300


def render_reload_when_loadable(deadline_seconds: int = RELOAD_DEADLINE_SECONDS) -> str:
    """Shell script: reload nginx once `nginx -t` accepts its configuration, checking every second
    until the deadline; past it, fail with nginx's own words (the upstream that does not resolve)."""
    return (
        f"deadline=$(($(date +%s) + {deadline_seconds})); "
        'until checked="$(nginx -t 2>&1)"; do '
        'if [ "$(date +%s)" -ge "$deadline" ]; then '
        f'echo "nginx did not accept its configuration within {deadline_seconds} s, so it was not reloaded: $checked" >&2; '
        "exit 1; fi; sleep 1; done; exec nginx -s reload"
    )
