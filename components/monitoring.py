"""Monitoring: Prometheus, Alertmanager, node and blackbox exporters (basic); Grafana, Loki, Alloy,
cAdvisor and the database exporters (full). Nothing of it is published on the host."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.runtime.commands import exec_in_container
from components.runtime.deployment import Deployment, service_container
from components.runtime.storage import data_volume, fronted, private_network, pulled_image, secret_upload
from components.runtime.workload import FileDirectory, HealthCheck, ServiceContainer, Workload, role_fields
from components.contracts import SynapseMonitoringTarget, VoiceGrowMonitoringTarget
from components.rendering import engine_api
from components.rendering import monitoring as render
from components.rendering import synapse as synapse_render
from components.rendering.proxy import MonitoringRoutes
from components.secrets import secret_or_generated
from config.models import RoleSettings, StackSettings
from config.monitoring import MonitoringSettings
from config.roles import ROLES
from config.types import image_tag

COMPONENT = "monitoring"


def deployed(settings: StackSettings) -> render.Deployed:
    """What the stack deploys, as monitoring sees it."""
    synapse, voicegrow = settings.synapse, settings.voicegrow
    public: list[render.PublicEndpoint] = []
    if synapse.enabled:
        public.append(render.PublicEndpoint(synapse.host, "synapse", "/_matrix/client/versions"))
        if synapse.server_name != synapse.host:
            public.append(render.PublicEndpoint(synapse.server_name, "wellknown", "/.well-known/matrix/server"))
    if voicegrow.enabled:
        hosts = [(voicegrow.ws_host, None), (voicegrow.api_host, "/api/v1/health"), (voicegrow.console_host, None)]
        public += [render.PublicEndpoint(host, "voicegrow-server" if path else "proxy", path) for host, path in hosts if host]
    monitoring = settings.monitoring
    if monitoring.grafana_host:
        public.append(render.PublicEndpoint(monitoring.grafana_host, "grafana", "/api/health"))
    public += [render.PublicEndpoint(host, "monitoring", None) for host in (monitoring.prometheus_host, monitoring.alertmanager_host) if host]
    return render.Deployed(
        synapse=synapse.enabled,
        synapse_metrics=synapse.enabled and synapse.metrics,
        synapse_memory_limit_mb=settings.limits("synapse").memory_mb,
        voicegrow_replicas=voicegrow.replicas if voicegrow.enabled else 0,
        backup=settings.runs(ROLES["backup"]),
        healer=settings.runs(ROLES["healer"]),
        proxy=settings.runs(ROLES["proxy"]),
        public=public,
        public_tls=settings.tls != "off",
        # The stack's own CA signs self-signed certificates: their expiry is read, not their chain.
        verify_public_tls=settings.tls in ("acme", "files"),
    )


@dataclass(frozen=True)
class MonitoringArgs:
    """What monitoring watches and how: its settings, the deployed systems' targets, its roles, images and secrets."""

    settings: MonitoringSettings
    deployed: render.Deployed
    synapse: SynapseMonitoringTarget | None
    voicegrow: VoiceGrowMonitoringTarget | None
    roles: dict[str, RoleSettings]
    images: dict[str, str]
    synapse_image: str
    secrets: dict[str, pulumi.Output[str] | None]
    front_network: docker.Network | None = None
    """The proxy's network: the prober joins it, and what the proxy serves of monitoring (None: no proxy)."""
    docker_socket: str = "/var/run/docker.sock"
    """The engine's socket on the Docker host, which the engine API filter opens (full monitoring)."""


NO_RECEIVER_WARNING = (
    "monitoring.receivers is empty: alerts are seen only in Alertmanager's own page; list 'email', 'wecom', "
    "'dingtalk' or 'webhook' to have them sent (staging and prod require one)"
)


READABLE_BY_THE_SERVICE = "0644"
"""Mode of the secret files: the images run as their own unprivileged users (the container's alone)."""


def _wget(url: str) -> HealthCheck:
    return HealthCheck(test=["CMD", "wget", "-q", "--spider", url], timeout=5, start_period=30)


class Monitoring(pulumi.ComponentResource):
    """Metrics, probes and alerts for the whole stack; dashboards and logs with `full`."""

    def __init__(
        self, name: str, deployment: Deployment, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{deployment.project}:components:Monitoring", name, None, opts)
        self._deployment = deployment
        self._child = pulumi.ResourceOptions(parent=self, provider=deployment.provider)
        self._args = args
        settings = args.settings
        if not settings.receivers:
            # staging and prod refuse this (config/models.py); dev and test may run without.
            pulumi.log.warn(NO_RECEIVER_WARNING)
        self.network = private_network(deployment, COMPONENT, self._child)
        self._images = {role: pulled_image(reference, f"monitoring-{role}", self._child, deployment.platform) for role, reference in args.images.items()}
        self._stack_networks = [stack.network for stack in (args.synapse, args.voicegrow) if stack is not None]
        plan = render.build_plan(deployment.stack, deployment.prefix, settings, args.deployed)

        self.admin_password = secret_or_generated("monitoring-admin-password", args.secrets["grafana_admin_password"], self._child)
        self.containers: dict[str, Workload] = {}
        self.containers["prometheus"] = self._prometheus(plan)
        self.containers["alertmanager"] = self._alertmanager()
        node_command = ["--path.rootfs=/host"]
        node_volumes = [docker.ContainerVolumeArgs(host_path="/", container_path="/host", read_only=True)]
        self.healer_metrics_volume: pulumi.Output[str] | None = None
        if args.deployed.healer:
            # The healer has no network: it writes its metrics where node exporter reads them.
            volume = data_volume(deployment, "monitoring-healer-metrics", self._child)
            self.healer_metrics_volume = volume.name
            node_command.append(f"--collector.textfile.directory={render.TEXTFILE_DIR}")
            node_volumes.append(docker.ContainerVolumeArgs(volume_name=volume.name, container_path=render.TEXTFILE_DIR, read_only=True))
        self.containers["node_exporter"] = self._container(
            "node_exporter",
            "node-exporter",
            _wget(f"http://127.0.0.1:{render.NODE_EXPORTER_PORT}/metrics"),
            command=node_command,
            volumes=node_volumes,
        )
        self.containers["blackbox_exporter"] = self._container(
            "blackbox_exporter",
            "blackbox-exporter",
            _wget(f"http://127.0.0.1:{render.BLACKBOX_PORT}/-/healthy"),
            command=[f"--config.file={render.BLACKBOX_CONFIG_PATH}"],
            uploads=[docker.ContainerUploadArgs(file=render.BLACKBOX_CONFIG_PATH, content=render.render_blackbox_yml(plan.verify_public_tls))],
            # The public hosts are probed through the proxy, which answers to their names there.
            extra_networks=self._stack_networks + fronted(args.front_network),
        )
        # The roles the stack runs (StackSettings.runs) say which containers there are.
        if "dingtalk" in args.roles:
            self.containers["dingtalk"] = self._dingtalk()
        if "grafana" in args.roles:
            self._full(plan)

        self.routes = MonitoringRoutes(
            grafana_host=settings.grafana_host,
            prometheus_host=settings.prometheus_host,
            alertmanager_host=settings.alertmanager_host,
            grafana_upstream=f"grafana:{render.GRAFANA_PORT}",
            prometheus_upstream=f"prometheus:{render.PROMETHEUS_PORT}",
            alertmanager_upstream=f"alertmanager:{render.ALERTMANAGER_PORT}",
        )
        routed = {"grafana": settings.grafana_host, "prometheus": settings.prometheus_host, "alertmanager": settings.alertmanager_host}
        self.proxied_containers = [self.containers[role] for role, host in routed.items() if host and role in self.containers]
        self.container_names = pulumi.Output.all(*(container.name for container in self.containers.values()))
        self.register_outputs({"network": self.network.name, "containers": self.container_names})

    def _container(
        self,
        role: str,
        name: str,
        healthcheck: HealthCheck,
        command: list[str] | None = None,
        entrypoint: list[str] | None = None,
        envs: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        volumes: list[docker.ContainerVolumeArgs] | None = None,
        uploads: list[docker.ContainerUploadArgs] | None = None,
        extra_networks: list[docker.Network] | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        network: docker.Network | None = None,
        file_directories: list[FileDirectory] | None = None,
    ) -> Workload:
        return service_container(
            self._deployment,
            ServiceContainer(
                **role_fields(self._args.roles[role]),
                name=f"monitoring-{name}",
                image=self._deployment.runtime.runnable(self._images[role]),
                healthcheck=healthcheck,
                network=network or self.network,
                aliases=[name],
                command=command,
                entrypoint=entrypoint,
                envs=envs,
                volumes=volumes or [],
                uploads=uploads or [],
                file_directories=file_directories or [],
                extra_networks=extra_networks or [],
                extra_aliases=[name],
            ),
            pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=depends_on or [])),
        )

    def _volume(self, name: str, path: str) -> docker.ContainerVolumeArgs:
        volume = data_volume(self._deployment, f"monitoring-{name}", self._child)
        return docker.ContainerVolumeArgs(volume_name=volume.name, container_path=path)

    def _prometheus(self, plan: render.MonitoringPlan) -> Workload:
        settings = self._args.settings
        uploads = [
            docker.ContainerUploadArgs(file=render.PROMETHEUS_CONFIG_PATH, content=render.render_prometheus_yml(plan)),
            docker.ContainerUploadArgs(file=render.RULES_PATH, content=render.render_rules(plan)),
        ]
        voicegrow = self._args.voicegrow
        if settings.full and voicegrow is not None:
            user, password = voicegrow.minio_credentials
            token = pulumi.Output.all(user, password).apply(lambda keys: render.minio_token(keys[0], keys[1]))
            # Prometheus runs as nobody: the token file must be readable by it.
            uploads.append(secret_upload(render.MINIO_TOKEN_PATH, token, READABLE_BY_THE_SERVICE))
        external_url = f"https://{settings.prometheus_host}/" if settings.prometheus_host else None
        return self._container(
            "prometheus",
            "prometheus",
            _wget(f"http://127.0.0.1:{render.PROMETHEUS_PORT}/-/ready"),
            command=render.prometheus_args(settings, external_url),
            volumes=[self._volume("prometheus", "/prometheus")],
            uploads=uploads,
            extra_networks=self._stack_networks + self._served(settings.prometheus_host),
        )

    def _served(self, host: str | None) -> list[docker.Network]:
        """The front network, for a monitoring service the proxy serves on `host` (none when unset)."""
        return fronted(self._args.front_network) if host else []

    def _alertmanager(self) -> Workload:
        settings, secrets = self._args.settings, self._args.secrets
        values = [secrets[key] or pulumi.Output.from_input("") for key in ("alert_smtp_password", "alert_wecom_secret", "alert_webhook_url")]
        config = pulumi.Output.all(*values).apply(
            lambda keys: render.render_alertmanager_yml(
                settings, render.ReceiverSecrets(smtp_password=keys[0] or None, wecom_secret=keys[1] or None, webhook_url=keys[2] or None)
            )
        )
        command = [f"--config.file={render.ALERTMANAGER_CONFIG_PATH}", "--storage.path=/alertmanager"]
        if settings.alertmanager_host:
            command.append(f"--web.external-url=https://{settings.alertmanager_host}/")
        return self._container(
            "alertmanager",
            "alertmanager",
            _wget(f"http://127.0.0.1:{render.ALERTMANAGER_PORT}/-/ready"),
            command=command,
            volumes=[self._volume("alertmanager", "/alertmanager")],
            # Alertmanager runs as nobody; the file holds the receivers' secrets.
            uploads=[secret_upload(render.ALERTMANAGER_CONFIG_PATH, config, READABLE_BY_THE_SERVICE)],
            extra_networks=self._served(settings.alertmanager_host),
        )

    def _dingtalk(self) -> Workload:
        url, secret = self._args.secrets["alert_dingtalk_url"], self._args.secrets["alert_dingtalk_secret"]
        assert url is not None  # the loader requires it with the receiver
        config = pulumi.Output.all(url, secret or pulumi.Output.from_input("")).apply(
            lambda values: render.render_dingtalk_config(values[0], values[1] or None)
        )
        return self._container(
            "dingtalk",
            "dingtalk",
            _wget(f"http://127.0.0.1:{render.DINGTALK_PORT}/-/healthy"),
            command=[f"--config.file={render.DINGTALK_CONFIG_PATH}", f"--web.listen-address=:{render.DINGTALK_PORT}"],
            uploads=[secret_upload(render.DINGTALK_CONFIG_PATH, config, READABLE_BY_THE_SERVICE)],
        )

    def _full(self, plan: render.MonitoringPlan) -> None:
        """What `level: full` adds: dashboards, logs, per-container figures, the databases' exporters."""
        self._stores(plan)
        self._engine_readers()
        self._database_exporters()

    def _stores(self, plan: render.MonitoringPlan) -> None:
        """Grafana with its dashboards, and Loki."""
        settings, deployment = self._args.settings, self._deployment
        synapse_version = image_tag(self._args.synapse_image) if plan.synapse_memory_limit_bytes is not None else None
        root_url = f"https://{settings.grafana_host}/" if settings.grafana_host else None
        self.containers["grafana"] = self._container(
            "grafana",
            "grafana",
            _wget(f"http://127.0.0.1:{render.GRAFANA_PORT}/api/health"),
            entrypoint=render.grafana_entrypoint(synapse_version),
            envs=[*render.grafana_environment(root_url), f"GF_SECURITY_ADMIN_PASSWORD__FILE={render.GRAFANA_ADMIN_PASSWORD_PATH}"],
            volumes=[self._volume("grafana", "/var/lib/grafana")],
            extra_networks=self._served(settings.grafana_host),
            uploads=[
                secret_upload(render.GRAFANA_ADMIN_PASSWORD_PATH, self.admin_password, READABLE_BY_THE_SERVICE),
                docker.ContainerUploadArgs(
                    file=f"{render.GRAFANA_PROVISIONING_DIR}/datasources/datasources.yml", content=render.render_grafana_datasources()
                ),
                docker.ContainerUploadArgs(
                    file=f"{render.GRAFANA_PROVISIONING_DIR}/dashboards/dashboards.yml", content=render.render_grafana_dashboard_provider()
                ),
                docker.ContainerUploadArgs(
                    file=f"{render.GRAFANA_DASHBOARDS_DIR}/overview.json",
                    content=render.render_overview_dashboard(deployment.prefix, deployment.stack),
                ),
            ],
        )
        self.containers["loki"] = self._container(
            "loki",
            "loki",
            HealthCheck(test=["CMD-SHELL", f"wget -q --spider http://127.0.0.1:{render.LOKI_PORT}/ready"], timeout=5, start_period=60),
            command=[f"-config.file={render.LOKI_CONFIG_PATH}"],
            volumes=[self._volume("loki", "/loki")],
            uploads=[docker.ContainerUploadArgs(file=render.LOKI_CONFIG_PATH, content=render.render_loki_yml(settings.log_retention))],
        )

    def _engine_readers(self) -> None:
        """Alloy (logs) and cAdvisor (per-container figures), which read the engine through the
        filter, on a network of their own with it."""
        deployment = self._deployment
        engine_api_network = private_network(deployment, f"{COMPONENT}-engine-api", self._child)
        self.containers["engine_api"] = self._container(
            "engine_api",
            "engine-api",
            _wget(f"http://127.0.0.1:{engine_api.PORT}/_ping"),
            command=["nginx", "-c", f"{engine_api.CONFIG_DIR}/{engine_api.CONFIG_NAME}"],
            volumes=[docker.ContainerVolumeArgs(host_path=self._args.docker_socket, container_path=engine_api.SOCKET)],
            file_directories=[FileDirectory("config", engine_api.CONFIG_DIR, {engine_api.CONFIG_NAME: engine_api.render_engine_api_conf()})],
            network=engine_api_network,
        )
        self.containers["alloy"] = self._container(
            "alloy",
            "alloy",
            # The image has bash but no HTTP client.
            HealthCheck(
                test=[
                    "CMD",
                    "bash",
                    "-c",
                    f"exec 3<>/dev/tcp/127.0.0.1/{render.ALLOY_PORT} && printf 'GET /-/ready HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3",
                ],
                timeout=5,
            ),
            command=["run", f"--server.http.listen-addr=0.0.0.0:{render.ALLOY_PORT}", "--storage.path=/var/lib/alloy/data", render.ALLOY_CONFIG_PATH],
            uploads=[docker.ContainerUploadArgs(file=render.ALLOY_CONFIG_PATH, content=render.render_alloy_config(deployment.project, deployment.stack))],
            extra_networks=[engine_api_network],
            depends_on=[self.containers["engine_api"]],
        )
        self.containers["cadvisor"] = self._container(
            "cadvisor",
            "cadvisor",
            _wget(f"http://127.0.0.1:{render.CADVISOR_PORT}/healthz"),
            command=["--docker_only=true", f"--docker={engine_api.URL}", "--housekeeping_interval=15s", "--store_container_labels=false"],
            # The host's files cAdvisor reads its figures from; not /var/run, where the engine's socket is.
            volumes=[
                docker.ContainerVolumeArgs(host_path=host, container_path=path, read_only=True)
                for host, path in (("/", "/rootfs"), ("/sys", "/sys"), ("/var/lib/docker", "/var/lib/docker"))
            ],
            extra_networks=[engine_api_network],
            depends_on=[self.containers["engine_api"]],
        )

    def _database_exporters(self) -> None:
        """An exporter per database, logged in with an account of its own that can read statistics
        only, made (or updated) in the database's container once it is healthy."""
        deployment = self._deployment
        synapse, voicegrow = self._args.synapse, self._args.voicegrow
        password = secret_or_generated("monitoring-exporter-password", None, self._child)
        if synapse is not None and "postgres_exporter" in self._args.roles:
            command, sql = render.postgres_exporter_account(synapse_render.DATABASE_USER, synapse_render.DATABASE_NAME)
            account = exec_in_container(
                "monitoring-postgres-account",
                deployment,
                synapse.postgres,
                command,
                {"EXPORTER_PASSWORD": password},
                self,
                stdin=sql,
                triggers=[synapse.postgres.id],
            )
            self.containers["postgres_exporter"] = self._container(
                "postgres_exporter",
                "postgres-exporter",
                _wget(f"http://127.0.0.1:{render.POSTGRES_EXPORTER_PORT}/metrics"),
                envs=render.postgres_exporter_environment(synapse_render.DATABASE_NAME),
                uploads=[secret_upload(render.POSTGRES_EXPORTER_PASSWORD_PATH, password, READABLE_BY_THE_SERVICE)],
                extra_networks=[synapse.network],
                depends_on=[account],
            )
        if voicegrow is not None and "mysql_exporter" in self._args.roles:
            account = exec_in_container(
                "monitoring-mysql-account",
                deployment,
                voicegrow.mysql,
                render.mysql_exporter_account(),
                {"EXPORTER_PASSWORD": password},
                self,
                triggers=[voicegrow.mysql.id],
            )
            cnf = password.apply(render.render_mysql_exporter_cnf)
            self.containers["mysql_exporter"] = self._container(
                "mysql_exporter",
                "mysql-exporter",
                _wget(f"http://127.0.0.1:{render.MYSQL_EXPORTER_PORT}/metrics"),
                command=[f"--config.my-cnf={render.MYSQL_EXPORTER_CNF_PATH}"],
                # The exporter runs as nobody.
                uploads=[secret_upload(render.MYSQL_EXPORTER_CNF_PATH, cnf, READABLE_BY_THE_SERVICE)],
                extra_networks=[voicegrow.network],
                depends_on=[account],
            )
            self.containers["redis_exporter"] = self._container(
                "redis_exporter",
                "redis-exporter",
                # The image's alpine variant: the scratch one has nothing to check with.
                _wget(f"http://127.0.0.1:{render.REDIS_EXPORTER_PORT}/metrics"),
                envs=[f"REDIS_ADDR={render.REDIS_EXPORTER_TARGET}", f"REDIS_PASSWORD_FILE={render.REDIS_EXPORTER_PASSWORD_PATH}"],
                uploads=[
                    secret_upload(render.REDIS_EXPORTER_PASSWORD_PATH, voicegrow.redis_password.apply(render.render_redis_exporter_passwords), READABLE_BY_THE_SERVICE)
                ],
                extra_networks=[voicegrow.network],
            )
