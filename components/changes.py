"""Safe changes: what a deploy does before it replaces a container that holds data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.container import Deployment, ServiceContainer, exec_in_named_container
from config.types import docker_cpus

BACKUP_CONTAINER = "backup"
"""The backup job's container name (without the prefix)."""
PROXY_CONTAINER = "proxy"
"""The reverse proxy's container name (without the prefix)."""

# Fields of a ServiceContainer that change a running container in place (or nothing at all);
# every other field replaces it. Of the limits, only `cpus` replaces.
_IN_PLACE = {"limits", "wait_timeout"}


def replacement_digest(deployment: Deployment, spec: ServiceContainer) -> pulumi.Output[str]:
    """A digest of everything that replaces the container when it changes (secret when any of it is)."""
    fields = {field.name: getattr(spec, field.name) for field in dataclasses.fields(spec) if field.name not in _IN_PLACE}
    fields.update(
        name=deployment.name(spec.name),
        network=spec.network.name if spec.network is not None else None,
        extra_networks=[network.name for network in spec.extra_networks],
        cpus=docker_cpus(spec.limits.cpus),
        log_rotation=deployment.log_rotation.model_dump(),
    )
    return pulumi.Output.from_input(fields).apply(
        lambda resolved: hashlib.sha256(json.dumps(resolved, sort_keys=True, default=vars).encode()).hexdigest()
    )


def backup_before_replacing(
    resource_name: str, deployment: Deployment, specs: Sequence[ServiceContainer], parent: pulumi.Resource
) -> command.local.Command:
    """A backup that runs, and must succeed, before any of these containers is replaced.

    The containers depend on it, so a deploy runs it before it stops them; it runs again only
    when one of them would be replaced. The archive ends in `-before-change.tar`.
    """
    return exec_in_named_container(
        resource_name,
        deployment,
        BACKUP_CONTAINER,
        ["backup-now", "--before-change"],
        parent,
        triggers=[replacement_digest(deployment, spec) for spec in specs],
    )


def proxy_reload_after(
    resource_name: str, deployment: Deployment, container: docker.Container, parent: pulumi.Resource
) -> command.local.Command:
    """nginx re-reads its configuration, and so resolves its upstreams' names again, once this
    container has been replaced and is healthy (nginx resolves them only when it loads its
    configuration). A reload is graceful: requests in progress finish on the old workers."""
    return exec_in_named_container(
        resource_name,
        deployment,
        PROXY_CONTAINER,
        ["nginx", "-s", "reload"],
        parent,
        triggers=[container.id],
        depends_on=[container],
    )
