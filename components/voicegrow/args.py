"""What VoiceGrowStack is given: the settings slice, with its roles, images and secrets resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.changes import BackupBeforeChanges
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
