"""The homeserver's processes: Synapse's configuration, its main process, its workers with their
replication bus (Redis), and the first admin account."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.runtime.commands import exec_in_container
from components.parts import ComponentPart
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import data_volume, fronted
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.rendering import synapse as render
from components.rendering import synapse_workers as render_workers
from components.secrets import secret_or_generated
from components.synapse.args import SynapseStackArgs
from config.profiles import SynapseWorker

BOOTSTRAP_SCRIPT = Path(__file__).parent.parent / "scripts" / "synapse_bootstrap.py"


class SynapseServer(ComponentPart):
    """Synapse's processes, declared under the stack's component (its resources keep their names).

    Declared in two steps: the configuration and the main process's workload first (a backup
    must precede its replacement, and PostgreSQL's upgrade stops it), the processes with `start`
    once PostgreSQL is declared.
    """

    def __init__(
        self,
        stack: pulumi.Resource,
        deployment: Deployment,
        args: SynapseStackArgs,
        network: docker.Network,
        images: dict[str, docker.RemoteImage],
        postgres_password: pulumi.Output[str],
    ) -> None:
        super().__init__(stack, deployment)
        self._args = args
        self._network = network
        self._images = images
        self.data_volume = data_volume(deployment, "synapse-data", self._child)
        # Secret nonetheless: the operator's extra_config may hold passwords (e.g. SMTP).
        self.homeserver_yaml = pulumi.Output.secret(
            render.render_homeserver_yaml(
                args.settings, args.synapse_tuning, database_host="postgres", tls=args.tls, workers=args.workers
            )
        )
        self._config_files, self._redis_password = self._configuration(postgres_password)
        self.spec = self._main_spec()
        self.workers: dict[str, Workload] = {}
        self.admin_password: pulumi.Output[str] | None = None
        self.registration_token: pulumi.Output[str] | None = None

    @property
    def process_names(self) -> list[str]:
        """The workload names of Synapse's processes, the main one first (its workers replicate from it)."""
        return [self.spec.name, *(render_workers.worker_host(worker) for worker in self._args.workers)]

    def start(self, after: list[pulumi.Resource]) -> Workload:
        """The replication bus, the main process (after `after`: PostgreSQL and its upgrade's
        restore), its workers, and the admin account; returns the main process."""
        args = self._args
        redis: list[pulumi.Resource] = []
        if self._redis_password is not None:
            redis.append(self._redis(self._redis_password))
        main = service_container(self._deployment, self.spec, self._child_after([*after, *redis]))
        self.workers = {worker.name: self._worker(worker, main) for worker in args.workers}
        if args.settings.admin_username is not None:
            self._bootstrap(args.settings.admin_username, main)
        return main

    def _configuration(
        self, postgres_password: pulumi.Output[str]
    ) -> tuple[dict[str, pulumi.Input[str]], pulumi.Output[str] | None]:
        """The files of Synapse's configuration directory (its processes share them), and the
        replication bus's password when workers run."""
        args, child = self._args, self._child
        secret_files = pulumi.Output.all(
            postgres_password,
            *(
                secret_or_generated(name.replace("_", "-"), args.secrets[f"synapse_{name}"], child, length=48)
                for name in ("macaroon_secret_key", "form_secret", "registration_shared_secret")
            ),
        ).apply(lambda values: render.render_secret_files(render.SynapseSecrets(*values), database_host="postgres"))

        config_files: dict[str, pulumi.Input[str]] = {
            "homeserver.yaml": self.homeserver_yaml,
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

    def _main_spec(self) -> ServiceContainer:
        """Synapse's main process, published on the host's loopback, its media and signing key on a volume."""
        settings = self._args.settings
        return ServiceContainer(
            **role_fields(self._args.roles["synapse"]),
            name="synapse",
            image=self._deployment.runtime.runnable(self._images["synapse"]),
            healthcheck=HealthCheck(
                test=["CMD", "curl", "-fSs", f"http://localhost:{render.HTTP_PORT}/health"],
                timeout=5,
                start_period=60,
            ),
            network=self._network,
            aliases=["synapse"],
            extra_networks=fronted(self._args.front_network),
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
            file_directories=[FileDirectory("config", render.CONFIG_DIR, self._config_files)],
        )

    def _redis(self, password: pulumi.Output[str]) -> Workload:
        """The replication bus: Redis with a password, on Synapse's network only, nothing on disk."""
        role = self._args.roles["synapse_redis"]
        return service_container(
            self._deployment,
            ServiceContainer(
                **role_fields(role),
                name="synapse-redis",
                image=self._deployment.runtime.runnable(self._images["redis"]),
                healthcheck=HealthCheck(
                    test=[
                        "CMD-SHELL",
                        f'REDISCLI_AUTH="$(cat {render_workers.REDIS_CONFIG_DIR}/password)" redis-cli ping | grep -q PONG',
                    ],
                    timeout=5,
                    retries=5,
                ),
                network=self._network,
                aliases=[render_workers.REDIS_HOST],
                command=["redis-server", render_workers.REDIS_CONFIG_PATH],
                file_directories=[
                    FileDirectory(
                        "config",
                        render_workers.REDIS_CONFIG_DIR,
                        {
                            "redis.conf": pulumi.Output.secret(
                                password.apply(lambda value: render_workers.render_redis_conf(value, role.limits.memory_mb))
                            ),
                            "password": password,
                        },
                    )
                ],
            ),
            self._child,
        )

    def _worker(self, worker: SynapseWorker, main: Workload) -> Workload:
        """One worker: the shared config and its own worker.yaml, started once the main process is healthy."""
        args = self._args
        assert args.worker_plan is not None
        database = render.homeserver_config(args.settings, args.synapse_tuning, database_host="postgres", tls=args.tls)["database"]
        # Secret: the database arguments may carry what the operator put in synapse.extra_config.
        worker_yaml = pulumi.Output.secret(render_workers.render_worker_yaml(worker, database, args.worker_plan, args.settings.metrics))
        host = render_workers.worker_host(worker)
        return service_container(
            self._deployment,
            ServiceContainer(
                **role_fields(args.roles["synapse_worker"]),
                name=host,
                image=self._deployment.runtime.runnable(self._images["synapse"]),
                healthcheck=HealthCheck(
                    test=["CMD", "curl", "-fSs", f"http://localhost:{render_workers.HTTP_PORT}/health"],
                    timeout=5,
                    start_period=60,
                ),
                network=self._network,
                aliases=[host],
                extra_networks=fronted(args.front_network),
                extra_aliases=[host],
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
                file_directories=[FileDirectory("config", render.CONFIG_DIR, {**self._config_files, "worker.yaml": worker_yaml})],
            ),
            self._child_after([main]),
        )

    def _bootstrap(self, admin_username: str, main: Workload) -> None:
        """Create the admin account (and the first registration token) once Synapse is healthy."""
        args, child = self._args, self._child
        self.admin_password = secret_or_generated("admin-password", args.secrets["synapse_admin_password"], child)
        environment: dict[str, pulumi.Input[str]] = {"ADMIN_USERNAME": admin_username, "ADMIN_PASSWORD": self.admin_password}
        if args.settings.registration == "token":
            self.registration_token = secret_or_generated(
                "registration-token", args.secrets["synapse_registration_token"], child, length=24
            )
            environment["REGISTRATION_TOKEN"] = self.registration_token
            environment["REGISTRATION_TOKEN_DAYS"] = str(args.settings.registration_token_days or "")
        exec_in_container(
            "synapse-bootstrap",
            self._deployment,
            main,
            ["python3", "-"],
            environment,
            self._component,
            stdin=BOOTSTRAP_SCRIPT.read_text(),
            # Again when any of them changes: a new password or token is applied to the running Synapse.
            triggers=list(environment.values()),
        )
