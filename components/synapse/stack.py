"""SynapseStack: PostgreSQL, the Synapse homeserver and its .well-known server on a private network."""

from __future__ import annotations

import pulumi

from components.contracts import SynapseBackupTarget, SynapseMonitoringTarget
from components.runtime.deployment import Deployment
from components.runtime.storage import private_network, pulled_image
from components.rendering import synapse as render
from components.rendering import synapse_workers as render_workers
from components.rendering.proxy import MatrixRoute
from components.synapse.args import SynapseStackArgs
from components.synapse.database import SynapseDatabase
from components.synapse.server import SynapseServer
from components.synapse.wellknown import wellknown_server

COMPONENT = "synapse"


class SynapseStack(pulumi.ComponentResource):
    """A Matrix homeserver: PostgreSQL, Synapse and a .well-known nginx, published on the host's loopback.

    Its parts (database.py, server.py, wellknown.py) declare their resources under this
    component, so a resource's name and parent do not depend on which part declares it.
    """

    def __init__(
        self, name: str, deployment: Deployment, args: SynapseStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:SynapseStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        self.network = private_network(deployment, COMPONENT, child)
        images = {role: pulled_image(ref, role, child, deployment.platform) for role, ref in args.images.items()}

        database = SynapseDatabase(
            self, deployment, args.roles["postgres"], args.postgres_tuning, self.network, images["postgres"], args.secrets["postgres_password"]
        )
        server = SynapseServer(self, deployment, args, self.network, images, database.password)
        # Before PostgreSQL or Synapse is replaced: a backup, where backups run.
        before = args.backup.watch([database.spec, server.spec]) if args.backup is not None else []
        self.postgres, upgrade_restore = database.start(before, server.process_names)
        self.synapse = server.start([self.postgres, *upgrade_restore])
        self.workers = server.workers
        self.wellknown = wellknown_server(deployment, args, self.network, images["nginx"], child)

        self.postgres_password = database.password
        self.data_volume = server.data_volume
        self.admin_username = args.settings.admin_username
        self.admin_password = server.admin_password
        self.registration_token = server.registration_token
        self._publish(args, server.homeserver_yaml)

    def _publish(self, args: SynapseStackArgs, homeserver_yaml: pulumi.Output[str]) -> None:
        """What the proxy, the backups and the stack's outputs read of the homeserver."""
        settings = args.settings
        self.route = MatrixRoute(
            server_name=settings.server_name,
            public_host=settings.host,
            synapse_upstream=f"synapse:{render.HTTP_PORT}",
            wellknown_upstream="wellknown:80",
            max_body_size=settings.max_upload_size,
            worker_routes=render_workers.worker_routes(args.workers) if args.workers else [],
        )
        routed = {server.split(":")[0] for route in self.route.worker_routes for server in route.servers}
        self.proxied_containers = [
            self.synapse,
            self.wellknown,
            *(container for worker, container in zip(args.workers, self.workers.values()) if render_workers.worker_host(worker) in routed),
        ]
        self.reloading_upstreams: list[pulumi.Resource] = []
        # What the backups archive beside the data (homeserver.yaml holds secrets).
        self.config_files: dict[str, pulumi.Output[str]] = {
            "homeserver.yaml": homeserver_yaml,
            "log.config": pulumi.Output.from_input(render.render_log_config(settings.log_level)),
            "wellknown.conf": pulumi.Output.from_input(render.render_wellknown_nginx_conf(settings, args.tls)),
        }
        self.backup_target = SynapseBackupTarget(
            network=self.network,
            data_volume=self.data_volume,
            postgres=self.postgres,
            postgres_password=self.postgres_password,
            services=[self.synapse.name, *(worker.name for worker in self.workers.values())],
            admin_username=self.admin_username,
            admin_password=self.admin_password,
            config_files=self.config_files,
        )
        self.monitoring_target = SynapseMonitoringTarget(network=self.network, postgres=self.postgres)
        self.server_name = pulumi.Output.from_input(settings.server_name)
        self.client_url = pulumi.Output.from_input(render.public_baseurl(settings, args.tls))
        self.internal_url = pulumi.Output.from_input(f"http://synapse:{render.HTTP_PORT}")
        self.wellknown_urls = pulumi.Output.from_input(
            {
                name: f"http://{settings.http_bind}:{settings.wellknown_port}/.well-known/matrix/{name}"
                for name in ("server", "client")
            }
        )
        self.register_outputs(
            {
                "server_name": self.server_name,
                "client_url": self.client_url,
                "internal_url": self.internal_url,
                "wellknown_urls": self.wellknown_urls,
                "network": self.network.name,
            }
        )
