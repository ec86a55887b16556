"""What one component hands another: typed values, so that a consumer reads only what it needs.

The backup job and monitoring read each system through its `...BackupTarget` and
`...MonitoringTarget`, never the component itself: what they depend on is listed here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.runtime.workload import Workload


@dataclass(frozen=True)
class SynapseBackupTarget:
    """What the backup job reads of the homeserver."""

    network: docker.Network
    """Synapse's network, where the job reaches PostgreSQL."""
    data_volume: docker.Volume
    """Synapse's data (media store, signing key), which the job archives and restores."""
    postgres: Workload
    postgres_password: pulumi.Output[str]
    services: list[pulumi.Output[str]]
    """The containers that write the data, stopped while it is restored: the main process first
    (its workers replicate from it), then the workers."""
    admin_username: str | None
    admin_password: pulumi.Output[str] | None
    config_files: dict[str, pulumi.Output[str]]
    """The configuration archived beside the data (homeserver.yaml holds secrets)."""


@dataclass(frozen=True)
class VoiceGrowBackupTarget:
    """What the backup job reads of VoiceGrow."""

    network: docker.Network
    mysql: Workload
    minio: Workload
    bucket: pulumi.Resource
    """The command that makes the bucket: the job runs once it exists."""
    bucket_name: str
    minio_credentials: tuple[pulumi.Output[str], pulumi.Output[str]]
    services: list[pulumi.Output[str]]
    """The servers, stopped while MySQL or the bucket is restored."""
    config_files: dict[str, pulumi.Output[str]]
    """The configuration archived beside the data (redis.conf holds the password)."""


@dataclass(frozen=True)
class SynapseMonitoringTarget:
    """What monitoring reads of the homeserver: where to probe it, and its database to export."""

    network: docker.Network
    postgres: Workload


@dataclass(frozen=True)
class VoiceGrowMonitoringTarget:
    """What monitoring reads of VoiceGrow: where to probe it, and its stores to export and check."""

    network: docker.Network
    mysql: Workload
    redis_password: pulumi.Output[str]
    minio_credentials: tuple[pulumi.Output[str], pulumi.Output[str]]
