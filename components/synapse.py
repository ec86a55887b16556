"""SynapseStack: PostgreSQL, the Synapse homeserver and its .well-known server on a private network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.changes import BackupBeforeChanges
from components.contracts import SynapseBackupTarget, SynapseMonitoringTarget
from components.runtime.commands import docker_script, exec_in_container, exec_in_named_container
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import data_volume, fronted, private_network, pulled_image
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import synapse as render
from components.rendering import synapse_workers as render_workers
from components.rendering.proxy import MatrixRoute
from components.secrets import secret_or_generated
from config.models import RoleSettings, SynapseSettings
from config.profiles import PostgresTuning, SynapseTuning, SynapseWorker, SynapseWorkerPlan

COMPONENT = "synapse"
BOOTSTRAP_SCRIPT = Path(__file__).parent / "scripts" / "synapse_bootstrap.py"
SECRETS_DIR = "/run/secrets"


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


class SynapseStack(pulumi.ComponentResource):
    """A Matrix homeserver: PostgreSQL, Synapse and a .well-known nginx, published on the host's loopback."""

    def __init__(
        self, name: str, deployment: Deployment, args: SynapseStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:SynapseStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        settings = args.settings

        self.network = private_network(deployment, COMPONENT, child)
        self.postgres_volume = data_volume(deployment, "synapse-postgres", child)
        # A major upgrade's dump and the cluster it replaced (see render_postgres_upgrade_dump).
        self.postgres_upgrade_volume = data_volume(deployment, "synapse-postgres-upgrade", child)
        self.data_volume = data_volume(deployment, "synapse-data", child)
        images = {role: pulled_image(ref, role, child, deployment.platform) for role, ref in args.images.items()}

        postgres_password = secret_or_generated("postgres-password", args.secrets["postgres_password"], child)
        self.postgres_password = postgres_password
        postgres_spec = self._postgres_spec(deployment, args, images["postgres"], postgres_password)
        # Secret nonetheless: the operator's extra_config may hold passwords (e.g. SMTP).
        homeserver_yaml = pulumi.Output.secret(
            render.render_homeserver_yaml(settings, args.synapse_tuning, database_host="postgres", tls=args.tls, workers=args.workers)
        )
        config_files, redis_password = self._config_files(args, homeserver_yaml, postgres_password, child)
        synapse_spec = self._synapse_spec(deployment, args, images["synapse"], config_files)
        upgrade_restore = self._postgres(deployment, args, postgres_spec, synapse_spec, images["postgres"], child)
        self.redis: Workload | None = None
        if redis_password is not None:
            self.redis = self._redis(deployment, args, redis_password, deployment.runtime.runnable(images["redis"]), child)
        self.synapse = service_container(
            deployment,
            synapse_spec,
            pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(depends_on=[self.postgres, *upgrade_restore, *([self.redis] if self.redis else [])]),
            ),
        )
        self.workers = {
            worker.name: self._worker(deployment, args, worker, config_files, deployment.runtime.runnable(images["synapse"]), child)
            for worker in args.workers
        }
        self.wellknown = self._wellknown(deployment, args, images["nginx"], child)

        self.admin_username = settings.admin_username
        self.admin_password: pulumi.Output[str] | None = None
        self.registration_token: pulumi.Output[str] | None = None
        if settings.admin_username is not None:
            self._bootstrap(deployment, args, child)
        self._publish(args, homeserver_yaml)

    def _postgres_spec(
        self, deployment: Deployment, args: SynapseStackArgs, image: docker.RemoteImage, password: pulumi.Output[str]
    ) -> ServiceContainer:
        """PostgreSQL, its password a file, its data and upgrade volumes mounted."""
        return ServiceContainer(
            **role_fields(args.roles["postgres"]),
            name="synapse-postgres",
            image=deployment.runtime.runnable(image),
            # TCP, not the socket: on first start the image's init server listens on the socket
            # only and then shuts down; a socket check would call that healthy.
            healthcheck=HealthCheck(
                test=["CMD", "pg_isready", "-h", "127.0.0.1", "-U", render.DATABASE_USER, "-d", render.DATABASE_NAME],
                start_period=30,
            ),
            network=self.network,
            aliases=["postgres"],
            envs=[
                f"POSTGRES_USER={render.DATABASE_USER}",
                f"POSTGRES_DB={render.DATABASE_NAME}",
                # Synapse refuses databases whose collation is not C.
                "POSTGRES_INITDB_ARGS=--encoding=UTF8 --lc-collate=C --lc-ctype=C",
                f"POSTGRES_PASSWORD_FILE={SECRETS_DIR}/postgres_password",
            ],
            file_directories=[FileDirectory("secrets", SECRETS_DIR, {"postgres_password": password})],
            command=render.postgres_server_args(args.postgres_tuning),
            volumes=[
                docker.ContainerVolumeArgs(volume_name=self.postgres_volume.name, container_path=render.POSTGRES_DATA),
                docker.ContainerVolumeArgs(volume_name=self.postgres_upgrade_volume.name, container_path=render.UPGRADE_DIR),
            ],
            # The server writes the upgrade dump there; a fresh volume is root's.
            owned_paths=[render.UPGRADE_DIR],
        )

    def _config_files(
        self,
        args: SynapseStackArgs,
        homeserver_yaml: pulumi.Output[str],
        postgres_password: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> tuple[dict[str, pulumi.Input[str]], pulumi.Output[str] | None]:
        """The files of Synapse's configuration directory (its processes share them), and the
        replication bus's password when workers run."""
        secret_files = pulumi.Output.all(
            postgres_password,
            *(
                secret_or_generated(name.replace("_", "-"), args.secrets[f"synapse_{name}"], child, length=48)
                for name in ("macaroon_secret_key", "form_secret", "registration_shared_secret")
            ),
        ).apply(lambda values: render.render_secret_files(render.SynapseSecrets(*values), database_host="postgres"))

        config_files: dict[str, pulumi.Input[str]] = {
            "homeserver.yaml": homeserver_yaml,
            "log.config": render.render_log_config(args.settings.log_level),
            **{
                name: pulumi.Output.secret(secret_files.apply(lambda files, name=name: files[name]))
                for name in render.SECRET_FILES
            },
        }
        redis_password: pulumi.Output[str] | None = None
        if args.workers:
            redis_password = secret_or_generated("synapse-redis-password", args.secrets["synapse_redis_password"], child)
            config_files["redis_password"] = redis_password
            config_files["worker_replication_secret"] = secret_or_generated(
                "synapse-replication-secret", args.secrets["synapse_replication_secret"], child, length=48
            )
        return config_files, redis_password

    def _synapse_spec(
        self,
        deployment: Deployment,
        args: SynapseStackArgs,
        image: docker.RemoteImage,
        config_files: dict[str, pulumi.Input[str]],
    ) -> ServiceContainer:
        """Synapse's main process, published on the host's loopback, its media and signing key on a volume."""
        settings = args.settings
        return ServiceContainer(
            **role_fields(args.roles["synapse"]),
            name="synapse",
            image=deployment.runtime.runnable(image),
            healthcheck=HealthCheck(
                test=["CMD", "curl", "-fSs", f"http://localhost:{render.HTTP_PORT}/health"],
                timeout=5,
                start_period=60,
            ),
            network=self.network,
            aliases=["synapse"],
            extra_networks=fronted(args.front_network),
            extra_aliases=["synapse"],
            envs=[
                f"SYNAPSE_CONFIG_DIR={render.CONFIG_DIR}",
                f"SYNAPSE_CONFIG_PATH={render.CONFIG_PATH}",
                "PYTHONDONTWRITEBYTECODE=1",
            ],
            ports=[docker.ContainerPortArgs(internal=render.HTTP_PORT, external=settings.http_port, ip=settings.http_bind)],
            volumes=[docker.ContainerVolumeArgs(volume_name=self.data_volume.name, container_path=render.DATA_DIR)],
            # The image hands /data to its user only in `generate` mode; a fresh named volume is
            # root's, and Synapse must write its signing key and media there.
            owned_paths=[render.DATA_DIR],
            file_directories=[FileDirectory("config", render.CONFIG_DIR, config_files)],
        )

    def _postgres(
        self,
        deployment: Deployment,
        args: SynapseStackArgs,
        postgres_spec: ServiceContainer,
        synapse_spec: ServiceContainer,
        image: docker.RemoteImage,
        child: pulumi.ResourceOptions,
    ) -> list[pulumi.Resource]:
        """PostgreSQL, after what must run before it is replaced; returns what must run after it
        and before Synapse starts again (a major upgrade's restore)."""
        postgres_password = self.postgres_password
        # Before PostgreSQL or Synapse is replaced: a backup (where backups run), then the
        # running server learns a changed password, before any client is restarted with it.
        before = args.backup.watch([postgres_spec, synapse_spec]) if args.backup is not None else []
        before.append(
            exec_in_named_container(
                "synapse-postgres-password",
                deployment,
                postgres_spec.name,
                ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-U", render.DATABASE_USER, "-d", render.DATABASE_NAME],
                self,
                triggers=[postgres_password],
                stdin=pulumi.Output.secret(postgres_password.apply(render.postgres_password_sql)),
                depends_on=before,
            )
        )
        # A new major version of PostgreSQL: dumped from the old server before it is replaced,
        # restored into the new one before Synapse runs again. Only where what the upgrade stops
        # stays stopped (Swarm would start new tasks).
        upgrade = pulumi.Output.all(self.postgres_volume.name, self.postgres_upgrade_volume.name, image.image_id).apply(
            lambda values: render.PostgresUpgrade(
                postgres=deployment.name(postgres_spec.name),
                # The main process first: its workers replicate from it.
                synapse=(
                    deployment.name(synapse_spec.name),
                    *(deployment.name(render_workers.worker_host(worker)) for worker in args.workers),
                ),
                data_volume=values[0],
                upgrade_volume=values[1],
                image=values[2],
                user=args.roles["postgres"].security.user or "0:0",
            )
        )
        upgrade_dump: list[pulumi.Resource] = []
        upgrade_restore: list[pulumi.Resource] = []
        if deployment.runtime.keeps_stopped_workloads:
            upgrade_dump.append(
                docker_script(
                    "synapse-postgres-upgrade-dump",
                    deployment,
                    upgrade.apply(render.render_postgres_upgrade_dump),
                    self,
                    triggers=[image.image_id],
                    depends_on=before,
                )
            )
        self.postgres = service_container(
            deployment,
            postgres_spec,
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[*before, *upgrade_dump])),
        )
        if deployment.runtime.keeps_stopped_workloads:
            upgrade_restore.append(
                docker_script(
                    "synapse-postgres-upgrade-restore",
                    deployment,
                    upgrade.apply(render.render_postgres_upgrade_restore),
                    self,
                    triggers=[image.image_id],
                    depends_on=[self.postgres],
                )
            )
        return upgrade_restore

    def _wellknown(
        self, deployment: Deployment, args: SynapseStackArgs, image: docker.RemoteImage, child: pulumi.ResourceOptions
    ) -> Workload:
        """The .well-known delegation server (nginx), on Synapse's and the proxy's networks."""
        settings = args.settings
        return service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.roles["wellknown"]),
                name="synapse-wellknown",
                runs_on="app",
                image=deployment.runtime.runnable(image),
                healthcheck=HealthCheck(
                    test=["CMD", "wget", "-q", "--spider", "http://127.0.0.1/.well-known/matrix/server"],
                    timeout=5,
                    start_period=10,
                ),
                network=self.network,
                aliases=["wellknown"],
                extra_networks=fronted(args.front_network),
                extra_aliases=["wellknown"],
                ports=[docker.ContainerPortArgs(internal=80, external=settings.wellknown_port, ip=settings.http_bind)],
                file_directories=[
                    FileDirectory(
                        "config", "/etc/nginx/conf.d", {"default.conf": render.render_wellknown_nginx_conf(settings, args.tls)}
                    )
                ],
            ),
            child,
        )

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

    def _redis(
        self,
        deployment: Deployment,
        args: SynapseStackArgs,
        password: pulumi.Output[str],
        image: pulumi.Input[str],
        child: pulumi.ResourceOptions,
    ) -> Workload:
        """Synapse's replication bus: Redis with a password, on Synapse's network only, nothing on disk."""
        limits = args.roles["synapse_redis"].limits
        return service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.roles["synapse_redis"]),
                name="synapse-redis",
                image=image,
                healthcheck=HealthCheck(
                    test=[
                        "CMD-SHELL",
                        f'REDISCLI_AUTH="$(cat {render_workers.REDIS_CONFIG_DIR}/password)" redis-cli ping | grep -q PONG',
                    ],
                    timeout=5,
                    retries=5,
                ),
                network=self.network,
                aliases=[render_workers.REDIS_HOST],
                command=["redis-server", render_workers.REDIS_CONFIG_PATH],
                file_directories=[
                    FileDirectory(
                        "config",
                        render_workers.REDIS_CONFIG_DIR,
                        {
                            "redis.conf": pulumi.Output.secret(
                                password.apply(lambda value: render_workers.render_redis_conf(value, limits.memory_mb))
                            ),
                            "password": password,
                        },
                    )
                ],
            ),
            child,
        )

    def _worker(
        self,
        deployment: Deployment,
        args: SynapseStackArgs,
        worker: SynapseWorker,
        config_files: dict[str, pulumi.Input[str]],
        image: pulumi.Input[str],
        child: pulumi.ResourceOptions,
    ) -> Workload:
        """One Synapse worker: the shared config and its own worker.yaml, started once the main process is healthy."""
        assert args.worker_plan is not None
        database = render.homeserver_config(args.settings, args.synapse_tuning, database_host="postgres", tls=args.tls)["database"]
        # Secret: the database arguments may carry what the operator put in synapse.extra_config.
        worker_yaml = pulumi.Output.secret(render_workers.render_worker_yaml(worker, database, args.worker_plan, args.settings.metrics))
        return service_container(
            deployment,
            ServiceContainer(
                **role_fields(args.roles["synapse_worker"]),
                name=render_workers.worker_host(worker),
                image=image,
                healthcheck=HealthCheck(
                    test=["CMD", "curl", "-fSs", f"http://localhost:{render_workers.HTTP_PORT}/health"],
                    timeout=5,
                    start_period=60,
                ),
                network=self.network,
                aliases=[render_workers.worker_host(worker)],
                extra_networks=fronted(args.front_network),
                extra_aliases=[render_workers.worker_host(worker)],
                command=[
                    "run",
                    "-m",
                    render_workers.worker_app(worker),
                    "--config-path",
                    render.CONFIG_PATH,
                    "--config-path",
                    render_workers.WORKER_CONFIG_PATH,
                ],
                envs=["PYTHONDONTWRITEBYTECODE=1"],
                # The signing key for all; only the media repository writes (its media store).
                volumes=[
                    docker.ContainerVolumeArgs(
                        volume_name=self.data_volume.name, container_path=render.DATA_DIR, read_only=worker.kind != "media"
                    )
                ],
                file_directories=[FileDirectory("config", render.CONFIG_DIR, {**config_files, "worker.yaml": worker_yaml})],
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.synapse])),
        )

    def _bootstrap(self, deployment: Deployment, args: SynapseStackArgs, child: pulumi.ResourceOptions) -> None:
        """Create the admin account (and the first registration token) once Synapse is healthy."""
        settings = args.settings
        assert settings.admin_username is not None
        self.admin_password = secret_or_generated("admin-password", args.secrets["synapse_admin_password"], child)
        environment: dict[str, pulumi.Input[str]] = {
            "ADMIN_USERNAME": settings.admin_username,
            "ADMIN_PASSWORD": self.admin_password,
        }
        if settings.registration == "token":
            self.registration_token = secret_or_generated(
                "registration-token", args.secrets["synapse_registration_token"], child, length=24
            )
            environment["REGISTRATION_TOKEN"] = self.registration_token
            environment["REGISTRATION_TOKEN_DAYS"] = str(settings.registration_token_days or "")
        exec_in_container(
            "synapse-bootstrap",
            deployment,
            self.synapse,
            ["python3", "-"],
            environment,
            self,
            stdin=BOOTSTRAP_SCRIPT.read_text(),
            # Again when any of them changes: a new password or token is applied to the running Synapse.
            triggers=list(environment.values()),
        )
