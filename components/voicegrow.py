"""VoiceGrowStack: MySQL, Redis, MinIO and the VoiceGrow server replicas on a private network."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from components.changes import BackupBeforeChanges, proxy_reload_after
from components.contracts import VoiceGrowBackupTarget, VoiceGrowMonitoringTarget
from components.runtime.commands import exec_in_container, exec_in_named_container
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import built_image, data_volume, fronted, private_network, pulled_image
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import voicegrow as render
from components.rendering.proxy import VoiceGrowRoutes
from components.secrets import secret_or_generated
from config.models import RoleSettings, VoiceGrowSettings
from config.profiles import VoiceGrowTuning

COMPONENT = "voicegrow"


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


class VoiceGrowStack(pulumi.ComponentResource):
    """The VoiceGrow backend: its data services reachable only inside the stack network."""

    def __init__(
        self, name: str, deployment: Deployment, args: VoiceGrowStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:VoiceGrowStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        secrets = args.secrets

        self.network = private_network(deployment, COMPONENT, child)
        self.volumes = {
            purpose: data_volume(deployment, f"voicegrow-{purpose}", child)
            for purpose in ("mysql", "redis", "minio", "models", "logs")
        }
        images = {role: pulled_image(ref, f"voicegrow-{role}", child, deployment.platform) for role, ref in args.images.items()}

        passwords = _Passwords(
            mysql_root=secret_or_generated("mysql-root-password", secrets["mysql_root_password"], child),
            mysql=secret_or_generated("mysql-password", secrets["mysql_password"], child),
            redis=secret_or_generated("redis-password", secrets["redis_password"], child),
            minio_user=secret_or_generated("minio-root-user", secrets["minio_root_user"], child, length=20),
            minio=secret_or_generated("minio-root-password", secrets["minio_root_password"], child, length=40),
            minio_app=secret_or_generated("minio-app-password", secrets["minio_app_password"], child, length=40),
        )
        # Rendered once: the services read them, and the backups archive them beside the data.
        my_cnf = render.render_my_cnf(args.settings, args.tuning)
        redis_conf = pulumi.Output.secret(
            passwords.redis.apply(lambda password: render.render_redis_conf(args.settings, args.tuning, password))
        )

        mysql_spec = self._mysql_spec(deployment, args, images, passwords, my_cnf)
        redis_spec = self._redis_spec(deployment, args, images, passwords, redis_conf)
        minio_spec = self._minio_spec(deployment, args, images, passwords)
        server_specs = self._server_specs(args, self._server_image(deployment, args, images, child), passwords)
        self._data_services(deployment, args, passwords, (mysql_spec, redis_spec, minio_spec), server_specs, child)
        self._servers(deployment, args, server_specs, child)
        self._publish(args, passwords, {"my.cnf": pulumi.Output.from_input(my_cnf), "redis.conf": redis_conf})

    def _mysql_spec(
        self,
        deployment: Deployment,
        args: VoiceGrowStackArgs,
        images: dict[str, docker.RemoteImage],
        passwords: _Passwords,
        my_cnf: str,
    ) -> ServiceContainer:
        """MySQL: its configuration, passwords and the operator's init SQL as files."""
        settings = args.settings
        mysql_files = [
            FileDirectory("config", render.MYSQL_CONFIG_DIR, {"voicegrow.cnf": my_cnf}),
            FileDirectory("secrets", render.SECRETS_DIR, {"root_password": passwords.mysql_root, "password": passwords.mysql}),
        ]
        if settings.mysql.init_sql is not None:
            with open(settings.mysql.init_sql, encoding="utf-8") as init_sql:
                mysql_files.append(FileDirectory("init", render.MYSQL_INIT_DIR, {"init.sql": init_sql.read()}))
        return ServiceContainer(
            **role_fields(args.roles["mysql"]),
            name="voicegrow-mysql",
            image=deployment.runtime.runnable(images["mysql"]),
            # TCP, not the socket: the image's first-start server listens only on the socket,
            # and a socket ping would report healthy before the real server is up.
            healthcheck=HealthCheck(
                test=["CMD-SHELL", "mysqladmin ping -h 127.0.0.1 --silent"],
                timeout=5,
                retries=5,
                start_period=60,
            ),
            network=self.network,
            aliases=["mysql"],
            envs=[
                f"MYSQL_ROOT_PASSWORD_FILE={render.SECRETS_DIR}/root_password",
                # Root logs in over the container's own socket only; every client on the network
                # (the servers, the backup, the exporter) has an account of its own.
                "MYSQL_ROOT_HOST=localhost",
                f"MYSQL_DATABASE={render.DATABASE}",
                f"MYSQL_USER={render.DATABASE_USER}",
                f"MYSQL_PASSWORD_FILE={render.SECRETS_DIR}/password",
            ],
            ports=_data_port(settings, render.MYSQL_PORT),
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volumes["mysql"].name, container_path="/var/lib/mysql")],
            file_directories=mysql_files,
        )

    def _redis_spec(
        self,
        deployment: Deployment,
        args: VoiceGrowStackArgs,
        images: dict[str, docker.RemoteImage],
        passwords: _Passwords,
        redis_conf: pulumi.Output[str],
    ) -> ServiceContainer:
        """Redis with a password and its configuration as files."""
        settings = args.settings
        return ServiceContainer(
            **role_fields(args.roles["redis"]),
            name="voicegrow-redis",
            image=deployment.runtime.runnable(images["redis"]),
            # redis-cli reads the password from REDISCLI_AUTH, here set from the password file
            # for the check alone; an unauthenticated ping fails.
            healthcheck=HealthCheck(
                test=[
                    "CMD-SHELL",
                    f'REDISCLI_AUTH="$(cat {render.REDIS_CONFIG_DIR}/password)" redis-cli ping | grep -q PONG',
                ],
                timeout=5,
                retries=5,
            ),
            network=self.network,
            aliases=["redis"],
            command=["redis-server", render.REDIS_CONFIG_PATH],
            ports=_data_port(settings, render.REDIS_PORT),
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volumes["redis"].name, container_path="/data")],
            file_directories=[
                FileDirectory(
                    "config",
                    render.REDIS_CONFIG_DIR,
                    {
                        "redis.conf": redis_conf,
                        "password": passwords.redis,
                    },
                )
            ],
        )

    def _minio_spec(
        self, deployment: Deployment, args: VoiceGrowStackArgs, images: dict[str, docker.RemoteImage], passwords: _Passwords
    ) -> ServiceContainer:
        """MinIO, its root credentials as files; its console through the proxy only when asked."""
        settings = args.settings
        return ServiceContainer(
            **role_fields(args.roles["minio"]),
            name="voicegrow-minio",
            image=deployment.runtime.runnable(images["minio"]),
            healthcheck=HealthCheck(
                test=["CMD", "curl", "-f", f"http://localhost:{render.MINIO_API_PORT}/minio/health/live"],
                timeout=20,
            ),
            network=self.network,
            aliases=["minio"],
            # The console is served through the proxy only when asked; its API then is too.
            extra_networks=fronted(args.front_network) if settings.console_host else [],
            extra_aliases=["minio"],
            envs=[
                f"MINIO_ROOT_USER_FILE={render.SECRETS_DIR}/root_user",
                f"MINIO_ROOT_PASSWORD_FILE={render.SECRETS_DIR}/root_password",
            ],
            # The certificates directory is created at start: by default in the user's home,
            # which is read-only here.
            command=["server", "/data", "--console-address", f":{render.MINIO_CONSOLE_PORT}", "--certs-dir", "/tmp/certs"],
            ports=_data_port(settings, render.MINIO_API_PORT) + _data_port(settings, render.MINIO_CONSOLE_PORT),
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volumes["minio"].name, container_path="/data")],
            # The image runs as any user; a fresh volume is root's.
            owned_paths=["/data"],
            file_directories=[
                FileDirectory("secrets", render.SECRETS_DIR, {"root_user": passwords.minio_user, "root_password": passwords.minio})
            ],
        )

    def _server_specs(self, args: VoiceGrowStackArgs, image: pulumi.Input[str], passwords: _Passwords) -> list[ServiceContainer]:
        """The server replicas: the same image, environment and secret files, each its own ports."""
        settings = args.settings
        # The servers use the bucket with a user of their own; the root user stays with MinIO and the backup.
        server_secrets = pulumi.Output.all(
            passwords.mysql,
            passwords.redis,
            render.MINIO_APP_USER,
            passwords.minio_app,
            *_api_keys(args.secrets),
        ).apply(lambda values: render.ServerSecrets(*values))
        server_env = server_secrets.apply(lambda values: render.server_environment(settings, values))
        # The _FILE convention: each secret a file the server reads (see docs/security.md).
        server_files = (
            [
                FileDirectory(
                    "secrets",
                    render.SECRETS_DIR,
                    {
                        name.lower(): pulumi.Output.secret(
                            server_secrets.apply(lambda values, name=name: render.server_secrets(values)[name])
                        )
                        for name in render.SERVER_SECRET_NAMES
                        if name not in _unset_api_keys(args.secrets)
                    },
                )
            ]
            if settings.secret_files
            else []
        )
        return [
            ServiceContainer(
                **role_fields(args.roles["voicegrow_server"]),
                name=f"voicegrow-server-{replica}",
                runs_on="app",
                image=image,
                healthcheck=HealthCheck(
                    test=["CMD", "curl", "-f", f"http://localhost:{render.SERVER_HTTP_PORT}/api/v1/health"],
                    timeout=10,
                    start_period=120,
                ),
                network=self.network,
                aliases=[f"server-{replica}", "server"],
                extra_networks=fronted(args.front_network),
                extra_aliases=[f"server-{replica}", "server"],
                envs=pulumi.Output.secret(server_env),
                file_directories=server_files,
                ports=[
                    docker.ContainerPortArgs(
                        internal=render.SERVER_WS_PORT,
                        external=settings.host_port(settings.ws_port, replica),
                        ip=settings.bind,
                    ),
                    docker.ContainerPortArgs(
                        internal=render.SERVER_HTTP_PORT,
                        external=settings.host_port(settings.http_port, replica),
                        ip=settings.bind,
                    ),
                ],
                volumes=[
                    docker.ContainerVolumeArgs(volume_name=self.volumes["models"].name, container_path="/app/models"),
                    docker.ContainerVolumeArgs(volume_name=self.volumes["logs"].name, container_path="/app/logs"),
                ],
            )
            for replica in range(1, settings.replicas + 1)
        ]

    def _data_services(
        self,
        deployment: Deployment,
        args: VoiceGrowStackArgs,
        passwords: _Passwords,
        data_specs: tuple[ServiceContainer, ServiceContainer, ServiceContainer],
        server_specs: list[ServiceContainer],
        child: pulumi.ResourceOptions,
    ) -> None:
        """MySQL, Redis and MinIO with the bucket and its user, after what must run before any of
        them or a server is replaced."""
        settings = args.settings
        mysql_spec, redis_spec, minio_spec = data_specs
        # Before a data service or a server is replaced: a backup (where backups run), then the
        # running MySQL learns changed passwords, before any client is restarted with them and
        # before its password files are rewritten (the command reads the root password there).
        before = args.backup.watch([mysql_spec, redis_spec, minio_spec, *server_specs]) if args.backup is not None else []
        accounts_sql = pulumi.Output.secret(
            pulumi.Output.all(passwords.mysql, passwords.mysql_root).apply(lambda passwords: render.mysql_accounts_sql(*passwords))
        )
        mysql_accounts = exec_in_named_container(
            "voicegrow-mysql-passwords",
            deployment,
            mysql_spec.name,
            # As root with the password the running server was given; the SQL comes on stdin.
            ["sh", "-c", render.MYSQL_ROOT_CLIENT],
            self,
            # Again whenever the SQL changes: a new password, or accounts a new release narrows.
            triggers=[accounts_sql],
            stdin=accounts_sql,
            depends_on=before,
        )

        self.mysql = service_container(deployment, mysql_spec, _after(child, [*before, mysql_accounts]))
        self.redis = service_container(deployment, redis_spec, _after(child, before))
        self.minio = service_container(deployment, minio_spec, _after(child, before))
        # mc takes an alias from MC_HOST_<alias>; re-run when MinIO is replaced (a new volume may be empty).
        root_alias = {
            "MC_HOST_local": pulumi.Output.format("http://{0}:{1}@127.0.0.1:{2}", passwords.minio_user, passwords.minio, render.MINIO_API_PORT)
        }
        self.bucket = exec_in_container(
            "voicegrow-bucket",
            deployment,
            self.minio,
            ["mc", "mb", "--ignore-existing", f"local/{settings.bucket}"],
            root_alias,
            self,
            triggers=[self.minio.id, settings.bucket],
        )
        # Again when MinIO is replaced (a new volume has no users) or the bucket or the secret changes.
        self.bucket_user = exec_in_container(
            "voicegrow-bucket-user",
            deployment,
            self.minio,
            render.minio_app_user_command(settings.bucket),
            {**root_alias, "APP_SECRET_KEY": passwords.minio_app},
            self,
            triggers=[self.minio.id, settings.bucket, passwords.minio_app],
        )

    def _servers(
        self, deployment: Deployment, args: VoiceGrowStackArgs, server_specs: list[ServiceContainer], child: pulumi.ResourceOptions
    ) -> None:
        """The replicas, replaced one at a time, each followed by a proxy reload."""
        # One replica at a time: each is replaced, healthy and known to the proxy before the next one stops.
        self.servers: list[Workload] = []
        # Each replica and the proxy reload after it: the proxy starts after them all.
        self.reloading_upstreams: list[pulumi.Resource] = []
        previous: list[pulumi.Resource] = []
        for spec in server_specs:
            server = service_container(deployment, spec, _after(child, [self.mysql, self.redis, self.minio, self.bucket, self.bucket_user, *previous]))
            reload = proxy_reload_after(f"{spec.name}-proxy-reload", deployment, server, self, args.other_proxy_upstreams)
            previous = [reload]
            self.servers.append(server)
            self.reloading_upstreams += [server, *previous]

    def _publish(self, args: VoiceGrowStackArgs, passwords: _Passwords, config_files: dict[str, pulumi.Output[str]]) -> None:
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

    def _server_image(
        self,
        deployment: Deployment,
        args: VoiceGrowStackArgs,
        images: dict[str, docker.RemoteImage],
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        """The operator's image, pulled, or built from the operator's source directory."""
        if args.settings.server_source is None:
            return deployment.runtime.runnable(images["server"])
        return built_image(
            "voicegrow-server-build",
            f"{deployment.prefix}-voicegrow-server:local",
            args.settings.server_source,
            child,
            platform=deployment.platform,
        )


@dataclass(frozen=True)
class _Passwords:
    """The stack's VoiceGrow secrets: given by the operator or generated once."""

    mysql_root: pulumi.Output[str]
    mysql: pulumi.Output[str]
    redis: pulumi.Output[str]
    minio_user: pulumi.Output[str]
    minio: pulumi.Output[str]
    minio_app: pulumi.Output[str]
    """The servers' own MinIO user's secret key."""


def _data_port(settings: VoiceGrowSettings, internal: int) -> list[docker.ContainerPortArgs]:
    """The port a data service publishes on the host's loopback, where the stack asks for it."""
    if not settings.publish_data_ports:
        return []
    return [docker.ContainerPortArgs(internal=internal, external=internal, ip="127.0.0.1")]


def _after(child: pulumi.ResourceOptions, resources: list[pulumi.Resource]) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=resources))


def _unset_api_keys(secrets: dict[str, pulumi.Output[str] | None]) -> set[str]:
    """The server's key variables that stay empty (see _api_keys): they get no file."""
    unset = {"TTS_API_KEY": secrets["tts_api_key"] is None, "TTS_SECRET_KEY": secrets["tts_secret_key"] is None}
    unset["LLM_API_KEY"] = secrets["llm_api_key"] is None and unset["TTS_API_KEY"]
    unset["LLM_SECRET_KEY"] = secrets["llm_secret_key"] is None and unset["TTS_SECRET_KEY"]
    return {name for name, empty in unset.items() if empty}


def _api_keys(secrets: dict[str, pulumi.Output[str] | None]) -> list[pulumi.Output[str]]:
    """TTS keys, and LLM keys that default to them (the guide lets both share one pair)."""
    tts_api = secrets["tts_api_key"] or pulumi.Output.secret("")
    tts_secret = secrets["tts_secret_key"] or pulumi.Output.secret("")
    if secrets["tts_api_key"] is None:
        pulumi.log.warn("tts_api_key is not set: VoiceGrow's TTS and LLM calls will be refused by ai-manager")
    return [tts_api, tts_secret, secrets["llm_api_key"] or tts_api, secrets["llm_secret_key"] or tts_secret]
