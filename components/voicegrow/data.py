"""VoiceGrow's data services: MySQL, Redis and MinIO, their volumes, accounts and the bucket."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.runtime.commands import exec_in_container, exec_in_named_container
from components.parts import ComponentPart
from components.runtime.deployment import service_container
from components.runtime.storage import data_volume, fronted
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, role_fields
from components.rendering import voicegrow as render
from components.voicegrow.args import VoiceGrowParts
from config.models import VoiceGrowSettings


class VoiceGrowData(ComponentPart):
    """MySQL, Redis and MinIO, declared under the stack's component (their resources keep their names).

    Declared in two steps: the volumes, configuration and workloads first (a backup must precede
    the replacement of any of them or of a server), the services with `start`.
    """

    def __init__(self, given: VoiceGrowParts) -> None:
        super().__init__(given.stack, given.deployment)
        args, deployment, passwords = given.args, given.deployment, given.passwords
        self._args = args
        self._images = given.images
        self._passwords = passwords
        self.network = given.network
        self.volumes = {purpose: data_volume(deployment, f"voicegrow-{purpose}", self._child) for purpose in ("mysql", "redis", "minio")}
        # Rendered once: the services read them, and the backups archive them beside the data.
        self.my_cnf = render.render_my_cnf(args.settings, args.tuning)
        self.redis_conf = pulumi.Output.secret(
            passwords.redis.apply(lambda password: render.render_redis_conf(args.settings, args.tuning, password))
        )
        self.specs = [self._mysql_spec(), self._redis_spec(), self._minio_spec()]

    def start(self, before: list[pulumi.Resource]) -> None:
        """The services after `before` (the backup that precedes a replacement), MySQL's accounts,
        and the bucket with the servers' user."""
        deployment, passwords, settings = self._deployment, self._passwords, self._args.settings
        mysql_spec, redis_spec, minio_spec = self.specs
        # The running MySQL learns changed passwords before any client is restarted with them and
        # before its password files are rewritten (the command reads the root password there).
        accounts_sql = pulumi.Output.secret(
            pulumi.Output.all(passwords.mysql, passwords.mysql_root).apply(lambda passwords: render.mysql_accounts_sql(*passwords))
        )
        mysql_accounts = exec_in_named_container(
            "voicegrow-mysql-passwords",
            deployment,
            mysql_spec.name,
            # As root with the password the running server was given; the SQL comes on stdin.
            ["sh", "-c", render.MYSQL_ROOT_CLIENT],
            self._component,
            # Again whenever the SQL changes: a new password, or accounts a new release narrows.
            triggers=[accounts_sql],
            stdin=accounts_sql,
            depends_on=before,
        )
        self.mysql = service_container(deployment, mysql_spec, self._child_after([*before, mysql_accounts]))
        self.redis = service_container(deployment, redis_spec, self._child_after(before))
        self.minio = service_container(deployment, minio_spec, self._child_after(before))
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
            self._component,
            triggers=[self.minio.id, settings.bucket],
        )
        # Again when MinIO is replaced (a new volume has no users) or the bucket or the secret changes.
        self.bucket_user = exec_in_container(
            "voicegrow-bucket-user",
            deployment,
            self.minio,
            render.minio_app_user_command(settings.bucket),
            {**root_alias, "APP_SECRET_KEY": passwords.minio_app},
            self._component,
            triggers=[self.minio.id, settings.bucket, passwords.minio_app],
        )

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What a server starts after: the services, the bucket and the servers' user."""
        return [self.mysql, self.redis, self.minio, self.bucket, self.bucket_user]

    def _mysql_spec(self) -> ServiceContainer:
        """MySQL: its configuration, passwords and the operator's init SQL as files."""
        args, passwords, settings = self._args, self._passwords, self._args.settings
        mysql_files = [
            FileDirectory("config", render.MYSQL_CONFIG_DIR, {"voicegrow.cnf": self.my_cnf}),
            FileDirectory("secrets", render.SECRETS_DIR, {"root_password": passwords.mysql_root, "password": passwords.mysql}),
        ]
        if settings.mysql.init_sql is not None:
            with open(settings.mysql.init_sql, encoding="utf-8") as init_sql:
                mysql_files.append(FileDirectory("init", render.MYSQL_INIT_DIR, {"init.sql": init_sql.read()}))
        return ServiceContainer(
            **role_fields(args.roles["mysql"]),
            name="voicegrow-mysql",
            image=self._deployment.runtime.runnable(self._images["mysql"]),
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

    def _redis_spec(self) -> ServiceContainer:
        """Redis with a password and its configuration as files."""
        args, passwords, settings = self._args, self._passwords, self._args.settings
        return ServiceContainer(
            **role_fields(args.roles["redis"]),
            name="voicegrow-redis",
            image=self._deployment.runtime.runnable(self._images["redis"]),
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
                        "redis.conf": self.redis_conf,
                        "password": passwords.redis,
                    },
                )
            ],
        )

    def _minio_spec(self) -> ServiceContainer:
        """MinIO, its root credentials as files; its console through the proxy only when asked."""
        args, passwords, settings = self._args, self._passwords, self._args.settings
        return ServiceContainer(
            **role_fields(args.roles["minio"]),
            name="voicegrow-minio",
            image=self._deployment.runtime.runnable(self._images["minio"]),
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


def _data_port(settings: VoiceGrowSettings, internal: int) -> list[docker.ContainerPortArgs]:
    """The port a data service publishes on the host's loopback, where the stack asks for it."""
    if not settings.publish_data_ports:
        return []
    return [docker.ContainerPortArgs(internal=internal, external=internal, ip="127.0.0.1")]
