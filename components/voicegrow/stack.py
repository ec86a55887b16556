"""VoiceGrowStack: MySQL, Redis, MinIO and the VoiceGrow server replicas on a private network."""

from __future__ import annotations

import pulumi

from components.contracts import VoiceGrowBackupTarget, VoiceGrowMonitoringTarget
from components.runtime.deployment import Deployment
from components.runtime.storage import private_network, pulled_image
from components.rendering import voicegrow as render
from components.rendering.proxy import VoiceGrowRoutes
from components.voicegrow.args import Passwords, VoiceGrowParts, VoiceGrowStackArgs
from components.voicegrow.data import VoiceGrowData
from components.voicegrow.servers import VoiceGrowServers

COMPONENT = "voicegrow"


class VoiceGrowStack(pulumi.ComponentResource):
    """The VoiceGrow backend: its data services reachable only inside the stack network.

    Its parts (data.py, servers.py) declare their resources under this component, so a
    resource's name and parent do not depend on which part declares it.
    """

    def __init__(
        self, name: str, deployment: Deployment, args: VoiceGrowStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:VoiceGrowStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        self.network = private_network(deployment, COMPONENT, child)
        images = {role: pulled_image(ref, f"voicegrow-{role}", child, deployment.platform) for role, ref in args.images.items()}
        passwords = Passwords.of(args.secrets, child)

        given = VoiceGrowParts(self, deployment, args, self.network, images, passwords)
        data, servers = VoiceGrowData(given), VoiceGrowServers(given)
        # Before a data service or a server is replaced: a backup, where backups run.
        data.start(args.backup.watch([*data.specs, *servers.specs]) if args.backup is not None else [])
        servers.start(data.ready)
        self.mysql, self.redis, self.minio, self.bucket = data.mysql, data.redis, data.minio, data.bucket
        self.servers = servers.servers
        self.reloading_upstreams = servers.reloading_upstreams
        self._publish(args, passwords, {"my.cnf": pulumi.Output.from_input(data.my_cnf), "redis.conf": data.redis_conf})

    def _publish(self, args: VoiceGrowStackArgs, passwords: Passwords, config_files: dict[str, pulumi.Output[str]]) -> None:
        """What the proxy, the backups and the stack's outputs read of VoiceGrow; `config_files`
        are archived beside the data (redis.conf holds the password)."""
        settings = args.settings
        self.ws_upstreams = [f"server-{replica}:{render.SERVER_WS_PORT}" for replica in range(1, settings.replicas + 1)]
        self.http_upstreams = [f"server-{replica}:{render.SERVER_HTTP_PORT}" for replica in range(1, settings.replicas + 1)]
        self.routes = VoiceGrowRoutes(
            ws_host=settings.ws_host,
            api_host=settings.api_host,
            console_host=settings.console_host,
            ws_upstreams=self.ws_upstreams,
            http_upstreams=self.http_upstreams,
            console_upstream=f"minio:{render.MINIO_CONSOLE_PORT}",
        )
        # Replicas are not here: the proxy reloads after each is replaced (a rolling replacement
        # must not replace the proxy too).
        self.proxied_containers = [self.minio]
        self.backup_target = VoiceGrowBackupTarget(
            network=self.network,
            mysql=self.mysql,
            minio=self.minio,
            bucket=self.bucket,
            bucket_name=settings.bucket,
            minio_credentials=(passwords.minio_user, passwords.minio),
            services=[server.name for server in self.servers],
            config_files=config_files,
        )
        self.monitoring_target = VoiceGrowMonitoringTarget(
            network=self.network,
            mysql=self.mysql,
            redis_password=passwords.redis,
            minio_credentials=(passwords.minio_user, passwords.minio),
        )
        self.http_urls = [
            f"http://{settings.bind}:{settings.host_port(settings.http_port, replica)}"
            for replica in range(1, settings.replicas + 1)
        ]
        self.register_outputs(
            {
                "network": self.network.name,
                "ws_upstreams": self.ws_upstreams,
                "http_upstreams": self.http_upstreams,
                "http_urls": self.http_urls,
            }
        )
