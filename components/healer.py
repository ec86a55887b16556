"""Healer: restarts the stack's containers that stay unhealthy (Docker restarts only those that exit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.runtime.deployment import Deployment, service_container
from components.runtime.workload import HealthCheck, ServiceContainer, role_fields
from config.models import RoleSettings

DOCKER_SOCKET = "/var/run/docker.sock"
"""Where the healer finds the engine's socket inside its container."""
METRICS_DIR = "/metrics"


@dataclass(frozen=True)
class HealerArgs:
    """The image the healer runs from, its limits, and how often it looks."""

    image: pulumi.Output[str]
    """The backup image, which carries the healer (see components/images/backup/healer.py)."""
    role: RoleSettings
    interval_seconds: int
    docker_socket: str
    """The engine's socket on the Docker host."""
    metrics_volume: pulumi.Output[str] | None = None
    """The volume node exporter reads metrics files from: the healer writes its own there."""
    heals: Sequence[pulumi.Resource] = field(default_factory=list)
    """The components whose containers it restarts: it starts after them and is removed before them."""


class Healer(pulumi.ComponentResource):
    """One container that holds the Docker socket, with no network and a read-only root.

    It restarts this stack's containers (by label and name prefix) that Docker reports
    unhealthy, except the backup job, whose unhealthy state reports stale backups: a restart
    would hide that until the next interval, and itself: it is unhealthy when it has given up on
    a container (see components/images/backup/healer.py), and a restart would forget that.

    It depends on every component it heals, so that `pulumi destroy` removes it first: it never
    restarts a container that the destroy is stopping, nor one whose network is being removed.
    """

    def __init__(
        self, name: str, deployment: Deployment, args: HealerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:Healer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider, depends_on=list(args.heals))
        volumes = [docker.ContainerVolumeArgs(host_path=args.docker_socket, container_path=DOCKER_SOCKET)]
        metrics_env = []
        if args.metrics_volume is not None:
            volumes.append(docker.ContainerVolumeArgs(volume_name=args.metrics_volume, container_path=METRICS_DIR))
            metrics_env.append(f"HEALER_METRICS_FILE={METRICS_DIR}/healer.prom")
        self.container = service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.role),
                name="healer",
                image=args.image,
                healthcheck=HealthCheck(test=["CMD", "healer", "check"], start_period=10),
                # Nothing on any network can reach the one container that holds the socket.
                network=None,
                aliases=[],
                envs=[
                    f"HEALER_LABEL={deployment.project}.stack={deployment.stack}",
                    f"HEALER_PREFIX={deployment.prefix}",
                    f"HEALER_EXCLUDE={deployment.name('backup')},{deployment.name('healer')}",
                    f"HEALER_INTERVAL={args.interval_seconds}",
                    *metrics_env,
                ],
                command=["healer", "run"],
                volumes=volumes,
            ),
            child,
        )
        self.register_outputs({"container": self.container.name})
