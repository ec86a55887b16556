"""The homeserver's PostgreSQL: its volumes and password, the server, password changes and major upgrades."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.runtime.commands import docker_script, exec_in_named_container
from components.parts import ComponentPart
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import data_volume
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import synapse as render
from components.secrets import secret_or_generated
from config.models import RoleSettings
from config.profiles import PostgresTuning

SECRETS_DIR = "/run/secrets"


class SynapseDatabase(ComponentPart):
    """PostgreSQL for Synapse, declared under the stack's component (its resources keep their names).

    Declared in two steps: the volumes, password and workload first, because Synapse's
    configuration needs the password; the server with `start` once the workloads whose
    replacement a backup must precede (Synapse's) are known.
    """

    def __init__(
        self,
        stack: pulumi.Resource,
        deployment: Deployment,
        role: RoleSettings,
        tuning: PostgresTuning,
        network: docker.Network,
        image: docker.RemoteImage,
        password: pulumi.Output[str] | None,
    ) -> None:
        super().__init__(stack, deployment)
        self._image = image
        self._role = role
        child = self._child
        self.volume = data_volume(deployment, "synapse-postgres", child)
        # A major upgrade's dump and the cluster it replaced (see render_postgres_upgrade_dump).
        self.upgrade_volume = data_volume(deployment, "synapse-postgres-upgrade", child)
        self.password = secret_or_generated("postgres-password", password, child)
        self.spec = ServiceContainer(
            **role_fields(role),
            name="synapse-postgres",
            image=deployment.runtime.runnable(image),
            # TCP, not the socket: on first start the image's init server listens on the socket
            # only and then shuts down; a socket check would call that healthy.
            healthcheck=HealthCheck(
                test=["CMD", "pg_isready", "-h", "127.0.0.1", "-U", render.DATABASE_USER, "-d", render.DATABASE_NAME],
                start_period=30,
            ),
            network=network,
            aliases=["postgres"],
            envs=[
                f"POSTGRES_USER={render.DATABASE_USER}",
                f"POSTGRES_DB={render.DATABASE_NAME}",
                # Synapse refuses databases whose collation is not C.
                "POSTGRES_INITDB_ARGS=--encoding=UTF8 --lc-collate=C --lc-ctype=C",
                f"POSTGRES_PASSWORD_FILE={SECRETS_DIR}/postgres_password",
            ],
            file_directories=[FileDirectory("secrets", SECRETS_DIR, {"postgres_password": self.password})],
            command=render.postgres_server_args(tuning),
            volumes=[
                docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=render.POSTGRES_DATA),
                docker.ContainerVolumeArgs(volume_name=self.upgrade_volume.name, container_path=render.UPGRADE_DIR),
            ],
            # The server writes the upgrade dump there; a fresh volume is root's.
            owned_paths=[render.UPGRADE_DIR],
        )

    def start(self, before: list[pulumi.Resource], clients: list[str]) -> tuple[Workload, list[pulumi.Resource]]:
        """The server, after `before` (the backup that precedes a replacement); `clients` are the
        workload names of Synapse's processes, main first (its workers replicate from it), stopped
        during a major upgrade. Returns the server and what must run after it and before Synapse
        starts again (a major upgrade's restore)."""
        deployment = self._deployment
        # The running server learns a changed password before any client is restarted with it.
        before = [
            *before,
            exec_in_named_container(
                "synapse-postgres-password",
                deployment,
                self.spec.name,
                ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-U", render.DATABASE_USER, "-d", render.DATABASE_NAME],
                self._component,
                triggers=[self.password],
                stdin=pulumi.Output.secret(self.password.apply(render.postgres_password_sql)),
                depends_on=before,
            ),
        ]
        # A new major version of PostgreSQL: dumped from the old server before it is replaced,
        # restored into the new one before Synapse runs again. Only where what the upgrade stops
        # stays stopped (Swarm would start new tasks).
        upgrade = pulumi.Output.all(self.volume.name, self.upgrade_volume.name, self._image.image_id).apply(
            lambda values: render.PostgresUpgrade(
                postgres=deployment.name(self.spec.name),
                synapse=tuple(deployment.name(client) for client in clients),
                data_volume=values[0],
                upgrade_volume=values[1],
                image=values[2],
                user=self._role.security.user or "0:0",
            )
        )
        upgrade_dump = self._upgrade_script("dump", upgrade.apply(render.render_postgres_upgrade_dump), before)
        server = service_container(deployment, self.spec, self._child_after([*before, *upgrade_dump]))
        return server, self._upgrade_script("restore", upgrade.apply(render.render_postgres_upgrade_restore), [server])

    def _upgrade_script(self, step: str, script: pulumi.Output[str], depends_on: list[pulumi.Resource]) -> list[pulumi.Resource]:
        """One step of a major upgrade, run when the image changes; none where the runtime
        restarts what the upgrade stops."""
        if not self._deployment.runtime.keeps_stopped_workloads:
            return []
        return [
            docker_script(
                f"synapse-postgres-upgrade-{step}",
                self._deployment,
                script,
                self._component,
                triggers=[self._image.image_id],
                depends_on=depends_on,
            )
        ]
