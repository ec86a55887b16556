"""What VoiceGrowStack is given (the settings slice, with its roles, images and secrets resolved),
and what it gives each of its parts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.changes import BackupBeforeChanges
from components.runtime.deployment import Deployment
from components.secrets import secret_or_generated
from config.models import RoleSettings, VoiceGrowSettings
from config.profiles import VoiceGrowTuning


@dataclass(frozen=True)
class VoiceGrowStackArgs:
    """The settings slice VoiceGrowStack needs, with its roles, images and secrets resolved."""

    settings: VoiceGrowSettings
    tuning: VoiceGrowTuning
    roles: dict[str, RoleSettings]
    """The component's roles as the stack runs them (StackSettings.roles_of)."""
    images: dict[str, str]
    secrets: dict[str, pulumi.Output[str] | None]
    backup: BackupBeforeChanges | None = None
    """The backup that runs before MySQL, Redis, MinIO or a server is replaced (None: none)."""
    other_proxy_upstreams: list[pulumi.Resource] = field(default_factory=list)
    """The proxy's upstreams of other components: a replica's proxy reload waits for them."""
    front_network: docker.Network | None = None
    """The proxy's network, which the servers join (and MinIO, for its console_host); None: no proxy."""


@dataclass(frozen=True)
class Passwords:
    """The stack's VoiceGrow secrets: given by the operator or generated once."""

    mysql_root: pulumi.Output[str]
    mysql: pulumi.Output[str]
    redis: pulumi.Output[str]
    minio_user: pulumi.Output[str]
    minio: pulumi.Output[str]
    minio_app: pulumi.Output[str]
    """The servers' own MinIO user's secret key."""

    @staticmethod
    def of(secrets: dict[str, pulumi.Output[str] | None], opts: pulumi.ResourceOptions) -> Passwords:
        return Passwords(
            mysql_root=secret_or_generated("mysql-root-password", secrets["mysql_root_password"], opts),
            mysql=secret_or_generated("mysql-password", secrets["mysql_password"], opts),
            redis=secret_or_generated("redis-password", secrets["redis_password"], opts),
            minio_user=secret_or_generated("minio-root-user", secrets["minio_root_user"], opts, length=20),
            minio=secret_or_generated("minio-root-password", secrets["minio_root_password"], opts, length=40),
            minio_app=secret_or_generated("minio-app-password", secrets["minio_app_password"], opts, length=40),
        )


@dataclass(frozen=True)
class VoiceGrowParts:
    """What each part of VoiceGrowStack is given: the component it declares under, and what the
    parts share (the stack network, the pulled images, the passwords)."""

    stack: pulumi.Resource
    deployment: Deployment
    args: VoiceGrowStackArgs
    network: docker.Network
    images: dict[str, docker.RemoteImage]
    passwords: Passwords
