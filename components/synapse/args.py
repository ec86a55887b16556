"""What SynapseStack is given: the settings slice, with its roles, images and secrets resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.changes import BackupBeforeChanges
from config.models import RoleSettings, SynapseSettings
from config.profiles import PostgresTuning, SynapseTuning, SynapseWorker, SynapseWorkerPlan


@dataclass(frozen=True)
class SynapseStackArgs:
    """The settings slice SynapseStack needs, with its roles, images and secrets resolved."""

    settings: SynapseSettings
    tls: bool
    synapse_tuning: SynapseTuning
    postgres_tuning: PostgresTuning
    roles: dict[str, RoleSettings]
    """The component's roles as the stack runs them (StackSettings.roles_of)."""
    images: dict[str, str]
    secrets: dict[str, pulumi.Output[str] | None]
    backup: BackupBeforeChanges | None = None
    """The backup that runs before PostgreSQL or Synapse is replaced (None: none)."""
    workers: list[SynapseWorker] = field(default_factory=list)
    """Synapse's workers (empty: one process); with them, `roles` and `images` hold the
    `synapse_worker` and `synapse_redis` roles and the `redis` image."""
    worker_plan: SynapseWorkerPlan | None = None
    front_network: docker.Network | None = None
    """The proxy's network, which Synapse's HTTP listeners and well-known join (None: no proxy)."""
