"""A workload as components describe it, and the policies every runtime applies to it alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_docker as docker

from config.hardening import SecurityPolicy
from config.models import RoleSettings
from config.profiles import ContainerLimits


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
    gpus: Literal["all"] | None = None
    """The host's GPUs the container gets ("all"); None: none. Containers only: the provider gives
    a Swarm service none (the settings refuse it there)."""


Workload = docker.Container | docker.Service
"""What runs a service: a container, or on Swarm a service of one task."""


def attachments(spec: ServiceContainer) -> list[tuple[docker.Network, list[str] | None]]:
    """The networks the service joins, each with the names it answers to there (none: no network)."""
    if spec.network is None:
        return []
    return [(spec.network, spec.aliases), *((network, spec.extra_aliases or None) for network in spec.extra_networks)]


def healthcheck_args(check: HealthCheck, duration: Callable[[int], str] = go_duration) -> dict[str, object]:
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


def confinement(policy: SecurityPolicy) -> dict[str, object]:
    """The user, capabilities, privileges and root filesystem of a container under `policy`."""
    return {
        "user": policy.user,
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=list(policy.capabilities) or None),
        "security_opts": ["no-new-privileges"],
        "read_only": policy.read_only,
    }


def tmpfs_options(policy: SecurityPolicy) -> str:
    """Mount options of the role's tmpfs: its user's alone (Docker's default copies the image
    directory's owner and mode, often root's 0755), or Docker's default for the image's own user."""
    if policy.user is None:
        return ""
    uid, _, gid = policy.user.partition(":")
    return f"uid={uid},gid={gid or uid},mode=0700"


def role_fields(role: RoleSettings) -> dict[str, Any]:
    """The fields of a ServiceContainer the role registry gives: its labels, limits, policy and stop grace."""
    return {
        "component": role.role.component,
        "role": role.role.role_label,
        "limits": role.limits,
        "security": role.security,
        "stop_grace_seconds": role.role.stop_grace_seconds,
    }
