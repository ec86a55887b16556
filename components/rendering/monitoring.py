"""The monitoring stack's files: Prometheus's scrape config and alert rules, Alertmanager's routes
and receivers, the blackbox exporter's modules, and (full) Grafana, Loki and Alloy.

What is monitored is described once, as a `MonitoringPlan`; every file is rendered from it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml

from components.rendering import dump_yaml, render_template
from components.images.backup.archives import METRICS_PORT as BACKUP_METRICS_PORT
from components.rendering.engine_api import URL as ENGINE_API_URL
from components.rendering.voicegrow import PASSWORD_PLACEHOLDER, SERVER_WS_PORT, mysql_as_root
from config.monitoring import EmailSettings, MonitoringSettings, WeComSettings, duration_seconds

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
NODE_EXPORTER_PORT = 9100
BLACKBOX_PORT = 9115
DINGTALK_PORT = 8060
GRAFANA_PORT = 3000
LOKI_PORT = 3100
ALLOY_PORT = 12345
CADVISOR_PORT = 8080
POSTGRES_EXPORTER_PORT = 9187
MYSQL_EXPORTER_PORT = 9104
REDIS_EXPORTER_PORT = 9121

PROMETHEUS_CONFIG_PATH = "/etc/prometheus/prometheus.yml"
RULES_PATH = "/etc/prometheus/rules.yml"
MINIO_TOKEN_PATH = "/etc/prometheus/minio.token"
# The database exporters' own login (statistics only), in PostgreSQL and in MySQL.
EXPORTER_USER = "exporter"
ALERTMANAGER_CONFIG_PATH = "/etc/alertmanager/alertmanager.yml"
BLACKBOX_CONFIG_PATH = "/etc/blackbox_exporter/config.yml"
DINGTALK_CONFIG_PATH = "/etc/prometheus-webhook-dingtalk/config.yml"
GRAFANA_PROVISIONING_DIR = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
LOKI_CONFIG_PATH = "/etc/loki/local-config.yaml"
ALLOY_CONFIG_PATH = "/etc/alloy/config.alloy"
MYSQL_EXPORTER_CNF_PATH = "/etc/mysqld-exporter/.my.cnf"
POSTGRES_EXPORTER_PASSWORD_PATH = "/etc/postgres-exporter/password"
REDIS_EXPORTER_PASSWORD_PATH = "/etc/redis-exporter/passwords.json"
REDIS_EXPORTER_TARGET = "redis://redis:6379"
GRAFANA_ADMIN_PASSWORD_PATH = "/etc/grafana/admin_password"
DATASOURCE_UID = "prometheus"
DINGTALK_TARGET = "operators"

SEVERITIES = ("critical", "warning")


# --- what is monitored ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A service the blackbox exporter checks from inside the stack networks (VoiceGrow guide §7.2)."""

    service: str
    title: str
    target: str
    module: str
    down_for: str
    recovery_minutes: int
    """The guide's recovery time target (§9.1): the alert fires well inside it."""


@dataclass(frozen=True)
class PublicEndpoint:
    """A public host behind the proxy: its certificate, and the path that must answer when one is given."""

    host: str
    service: str
    path: str | None


@dataclass(frozen=True)
class ScrapeJob:
    """Targets Prometheus scrapes directly."""

    job: str
    service: str
    targets: list[str]
    path: str = "/metrics"
    labels: dict[str, str] = field(default_factory=dict)
    bearer_token_file: str | None = None


@dataclass(frozen=True)
class MonitoringPlan:
    """Everything the monitoring stack watches in one stack."""

    stack: str
    prefix: str
    full: bool
    scrape_interval: str
    checks: list[Check]
    public: list[PublicEndpoint]
    public_tls: bool
    verify_public_tls: bool
    jobs: list[ScrapeJob]
    synapse_memory_limit_bytes: int | None


@dataclass(frozen=True)
class Deployed:
    """What the other components deployed, as the monitoring stack reaches it."""

    synapse: bool
    synapse_metrics: bool
    synapse_memory_limit_mb: int
    voicegrow_replicas: int
    backup: bool
    healer: bool
    proxy: bool
    public: list[PublicEndpoint]
    public_tls: bool
    verify_public_tls: bool


# Health endpoints and ports of the services, as their own components publish them inside the stack networks.
SYNAPSE_HEALTH = "http://synapse:8008/health"
SYNAPSE_METRICS = "synapse:9000"
WELLKNOWN_HEALTH = "http://wellknown/.well-known/matrix/server"
SERVER_HEALTH = "http://server-{replica}:8000/api/v1/health"
# The devices' WebSocket port: its own check, since the HTTP one says nothing of it.
SERVER_WEBSOCKET = "server-{replica}:" + str(SERVER_WS_PORT)
SERVER_METRICS = "server-{replica}:8000"
MINIO_HEALTH = "http://minio:9000/minio/health/live"
MINIO_METRICS = "minio:9000"
PROXY_HEALTH = "http://proxy/healthz"
TEXTFILE_DIR = "/var/lib/node-exporter/textfile"
"""Where node exporter reads metrics files of the containers that have no network (the healer's)."""
HEALER_SILENT_SECONDS = 300
"""A healer that has not looked for this long (it looks every few seconds) is stuck."""


def build_plan(stack: str, prefix: str, settings: MonitoringSettings, deployed: Deployed) -> MonitoringPlan:
    """The checks and scrape jobs for what is deployed, at the stack's monitoring level."""
    checks: list[Check] = []
    jobs = [
        ScrapeJob("prometheus", "monitoring", [f"localhost:{PROMETHEUS_PORT}"]),
        ScrapeJob("alertmanager", "monitoring", [f"alertmanager:{ALERTMANAGER_PORT}"]),
        ScrapeJob("node", "host", [f"node-exporter:{NODE_EXPORTER_PORT}"]),
        ScrapeJob("blackbox", "monitoring", [f"blackbox-exporter:{BLACKBOX_PORT}"]),
    ]
    if deployed.synapse:
        checks += [
            Check("synapse", "Synapse", SYNAPSE_HEALTH, "http_2xx", "1m", 5),
            Check("postgres", "PostgreSQL", "postgres:5432", "tcp_connect", "2m", 10),
            Check("wellknown", ".well-known", WELLKNOWN_HEALTH, "http_2xx", "2m", 10),
        ]
        if deployed.synapse_metrics:
            # Synapse's Grafana dashboard selects its series by `index`.
            jobs.append(ScrapeJob("synapse", "synapse", [SYNAPSE_METRICS], "/_synapse/metrics", {"index": "1"}))
        if settings.full:
            jobs.append(ScrapeJob("postgres", "postgres", [f"postgres-exporter:{POSTGRES_EXPORTER_PORT}"]))
    if deployed.voicegrow_replicas:
        checks += [
            check
            for replica in range(1, deployed.voicegrow_replicas + 1)
            for check in (
                # One alert per service: its summary names the instance, not a replica.
                Check("voicegrow-server", "A VoiceGrow server", SERVER_HEALTH.format(replica=replica), "http_2xx", "1m", 5),
                Check("voicegrow-websocket", "A VoiceGrow server's WebSocket port", SERVER_WEBSOCKET.format(replica=replica), "tcp_connect", "1m", 5),
            )
        ]
        checks += [
            Check("mysql", "MySQL", "mysql:3306", "tcp_connect", "2m", 10),
            Check("redis", "Redis", "redis:6379", "tcp_connect", "1m", 5),
            Check("minio", "MinIO", MINIO_HEALTH, "http_2xx", "2m", 10),
        ]
        if settings.voicegrow_metrics:
            servers = [SERVER_METRICS.format(replica=replica) for replica in range(1, deployed.voicegrow_replicas + 1)]
            jobs.append(ScrapeJob("voicegrow", "voicegrow-server", servers))
        if settings.full:
            jobs += [
                ScrapeJob("mysql", "mysql", [f"mysql-exporter:{MYSQL_EXPORTER_PORT}"]),
                ScrapeJob("redis", "redis", [f"redis-exporter:{REDIS_EXPORTER_PORT}"]),
                ScrapeJob("minio", "minio", [MINIO_METRICS], "/minio/v2/metrics/cluster", bearer_token_file=MINIO_TOKEN_PATH),
            ]
    if deployed.proxy:
        checks.append(Check("proxy", "the proxy", PROXY_HEALTH, "http_2xx", "1m", 5))
    if deployed.backup:
        jobs.append(ScrapeJob("backup", "backup", [f"backup:{BACKUP_METRICS_PORT}"]))
    if settings.full:
        jobs += [
            ScrapeJob("cadvisor", "host", [f"cadvisor:{CADVISOR_PORT}"]),
            ScrapeJob("grafana", "monitoring", [f"grafana:{GRAFANA_PORT}"]),
            ScrapeJob("loki", "monitoring", [f"loki:{LOKI_PORT}"]),
            ScrapeJob("alloy", "monitoring", [f"alloy:{ALLOY_PORT}"]),
        ]
    return MonitoringPlan(
        stack=stack,
        prefix=prefix,
        full=settings.full,
        scrape_interval=settings.scrape_interval,
        checks=checks,
        public=deployed.public if deployed.proxy else [],
        public_tls=deployed.public_tls,
        verify_public_tls=deployed.verify_public_tls,
        jobs=jobs,
        synapse_memory_limit_bytes=deployed.synapse_memory_limit_mb * 1024 * 1024 if deployed.synapse_metrics else None,
    )


# --- Prometheus -------------------------------------------------------------------------------


def _probe_job(name: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    """A blackbox job: each target's `module` label picks the exporter's module."""
    return {
        "job_name": name,
        "metrics_path": "/probe",
        "static_configs": targets,
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["module"], "target_label": "__param_module"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": f"blackbox-exporter:{BLACKBOX_PORT}"},
        ],
    }


def public_targets(plan: MonitoringPlan) -> list[dict[str, Any]]:
    """Each public host twice: its TLS handshake (certificate expiry) and, where given, its path."""
    scheme = "https" if plan.public_tls else "http"
    targets = []
    for endpoint in plan.public:
        if plan.public_tls:
            targets.append({"targets": [f"{endpoint.host}:443"], "labels": {"service": endpoint.service, "module": "tls_connect"}})
        if endpoint.path is not None:
            module = "https_2xx" if plan.public_tls else "http_2xx"
            targets.append(
                {"targets": [f"{scheme}://{endpoint.host}{endpoint.path}"], "labels": {"service": endpoint.service, "module": module}}
            )
    return targets


def render_prometheus_yml(plan: MonitoringPlan) -> str:
    """prometheus.yml: every scrape job, the probes, the rules file and Alertmanager."""
    scrape_configs: list[dict[str, Any]] = []
    for job in plan.jobs:
        config: dict[str, Any] = {
            "job_name": job.job,
            "metrics_path": job.path,
            "static_configs": [{"targets": job.targets, "labels": {"service": job.service, **job.labels}}],
        }
        if job.bearer_token_file is not None:
            config["authorization"] = {"type": "Bearer", "credentials_file": job.bearer_token_file}
        scrape_configs.append(config)
    checks = [{"targets": [check.target], "labels": {"service": check.service, "module": check.module}} for check in plan.checks]
    if checks:
        scrape_configs.append(_probe_job("probe", checks))
    if plan.public:
        scrape_configs.append(_probe_job("public", public_targets(plan)))
    document = {
        "global": {
            "scrape_interval": plan.scrape_interval,
            "evaluation_interval": plan.scrape_interval,
            "external_labels": {"stack": plan.stack},
        },
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"alertmanager:{ALERTMANAGER_PORT}"]}]}]},
        "rule_files": [RULES_PATH],
        "scrape_configs": scrape_configs,
    }
    return dump_yaml(document)


def prometheus_args(settings: MonitoringSettings, external_url: str | None) -> list[str]:
    """Prometheus's command line: config, storage and the retention the settings ask for.

    Without the lifecycle API (`/-/quit`, `/-/reload`), which anyone who reaches Prometheus could
    call: a changed configuration is a new upload, which replaces the container.
    """
    args = [
        f"--config.file={PROMETHEUS_CONFIG_PATH}",
        "--storage.tsdb.path=/prometheus",
        f"--storage.tsdb.retention.time={settings.retention}",
        f"--storage.tsdb.retention.size={settings.retention_size}",
    ]
    if external_url is not None:
        args.append(f"--web.external-url={external_url}")
    return args


# --- alert rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One alert rule, with what it means and what to do, in English and Chinese."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    summary_zh: str
    action: str
    action_zh: str
    service: str | None = None
    """Set when the series carry no `service` label of their own."""

    def rule(self) -> dict[str, Any]:
        labels = {"severity": self.severity}
        if self.service is not None:
            labels["service"] = self.service
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "summary_zh": self.summary_zh,
                "action": self.action,
                "action_zh": self.action_zh,
            },
        }


def _check_alerts(plan: MonitoringPlan) -> list[Alert]:
    """One 'down' alert per checked service, its window well inside the guide's recovery target."""
    alerts: dict[str, Alert] = {}
    for check in plan.checks:
        name = "".join(part.capitalize() for part in check.service.replace(".", "-").split("-")) + "Down"
        alerts[name] = Alert(
            name=name,
            expr=f'probe_success{{job="probe",service="{check.service}"}} == 0',
            for_=check.down_for,
            severity="critical",
            summary=f"{check.title} does not answer its health check ({{{{ $labels.instance }}}}).",
            summary_zh=f"{check.title} 健康检查失败（{{{{ $labels.instance }}}}）。",
            action=(
                f"docker ps -a and docker logs {plan.prefix}-<container>; restart it with docker start. "
                f"Recovery target: {check.recovery_minutes} min."
            ),
            action_zh=(
                f"用 docker ps -a 和 docker logs {plan.prefix}-<容器> 查看原因，用 docker start 重新启动。"
                f"恢复时间目标：{check.recovery_minutes} 分钟。"
            ),
        )
    return list(alerts.values())


def _samples_per_hour(plan: MonitoringPlan) -> int:
    return int(3600 // duration_seconds(plan.scrape_interval))


ALERT_RULES = Path(__file__).with_name("alerts.yaml")
"""The alert catalogue, as data (see its header)."""


@functools.cache
def _alert_rules() -> list[dict[str, Any]]:
    return yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))["groups"]


def alert_catalogue(plan: MonitoringPlan) -> dict[str, list[Alert]]:
    """Every alert rule, by group: the catalogue's groups the stack has, with the plan's values."""
    values = {
        "samples_per_hour": _samples_per_hour(plan),
        "healer_silent_seconds": HEALER_SILENT_SECONDS,
        "synapse_memory_limit_bytes": plan.synapse_memory_limit_bytes,
        "selector": f'name=~"{plan.prefix}-.+"',
    }
    present = {"public": bool(plan.public), "synapse_metrics": plan.synapse_memory_limit_bytes is not None, "full": plan.full}
    groups: dict[str, list[Alert]] = {}
    for group in _alert_rules():
        if "when" in group and not present[group["when"]]:
            continue
        alerts = [
            Alert(
                name=rule["alert"],
                expr=Template(rule["expr"]).substitute(values),
                for_=rule["for"],
                severity=rule["severity"],
                summary=rule["summary"],
                summary_zh=rule["summary_zh"],
                action=rule["action"],
                action_zh=rule["action_zh"],
                service=rule.get("service"),
            )
            for rule in group["rules"]
        ]
        groups[group["name"]] = (_check_alerts(plan) if group["name"] == "availability" else []) + alerts
    return groups


def render_rules(plan: MonitoringPlan) -> str:
    """rules.yml: the alert catalogue as Prometheus rule groups."""
    groups = [{"name": name, "rules": [alert.rule() for alert in alerts]} for name, alerts in alert_catalogue(plan).items()]
    return dump_yaml({"groups": groups})


# --- Alertmanager -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiverSecrets:
    """The secret values of the configured receivers (None where not configured)."""

    smtp_password: str | None = None
    wecom_secret: str | None = None
    webhook_url: str | None = None


def _integrations(settings: MonitoringSettings, secrets: ReceiverSecrets) -> dict[str, Any]:
    integrations: dict[str, Any] = {}
    if "email" in settings.receivers and settings.email is not None:
        integrations["email_configs"] = [_email(settings.email, secrets.smtp_password)]
    if "wecom" in settings.receivers and settings.wecom is not None:
        integrations["wechat_configs"] = [_wecom(settings.wecom, secrets.wecom_secret)]
    webhooks = []
    if "dingtalk" in settings.receivers:
        webhooks.append({"url": f"http://dingtalk:{DINGTALK_PORT}/dingtalk/{DINGTALK_TARGET}/send", "send_resolved": True})
    if "webhook" in settings.receivers and secrets.webhook_url is not None:
        webhooks.append({"url": secrets.webhook_url, "send_resolved": True})
    if webhooks:
        integrations["webhook_configs"] = webhooks
    return integrations


def _email(email: EmailSettings, password: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "to": ", ".join(email.to),
        "from": email.sender,
        "smarthost": email.smarthost,
        "require_tls": email.require_tls,
        "send_resolved": True,
    }
    if email.username is not None:
        config["auth_username"] = email.username
        config["auth_password"] = password or ""
    return config


def _wecom(wecom: WeComSettings, secret: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_url": wecom.api_url,
        "corp_id": wecom.corp_id,
        "api_secret": secret or "",
        "agent_id": wecom.agent_id,
        "send_resolved": True,
    }
    if wecom.to_party is not None:
        config["to_party"] = wecom.to_party
    if wecom.to_user is not None:
        config["to_user"] = wecom.to_user
    return config


def render_alertmanager_yml(settings: MonitoringSettings, secrets: ReceiverSecrets) -> str:
    """alertmanager.yml: critical alerts repeat hourly, warnings every 4 h; a critical alert mutes
    the warnings of the same service (the outage explains them)."""
    integrations = _integrations(settings, secrets)
    document = {
        "route": {
            "receiver": "warning",
            "group_by": ["alertname", "service"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            # A critical group is flushed every minute, so its recovery is told within a minute.
            "routes": [{"matchers": ['severity="critical"'], "receiver": "critical", "group_interval": "1m", "repeat_interval": "1h"}],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["stack", "service"],
            }
        ],
        "receivers": [{"name": severity, **integrations} for severity in SEVERITIES],
    }
    return dump_yaml(document)


def render_dingtalk_config(url: str, secret: str | None) -> str:
    """The DingTalk bridge's config: one robot, signed when it has a secret."""
    target: dict[str, Any] = {"url": url}
    if secret is not None:
        target["secret"] = secret
    return dump_yaml({"targets": {DINGTALK_TARGET: target}})


# --- blackbox exporter ------------------------------------------------------------------------


def render_blackbox_yml(verify_public_tls: bool) -> str:
    """The prober's modules: services inside the stack (plain HTTP, TCP) and the public hosts (TLS).

    With the stack's own self-signed CA the public certificate is not verified, but its expiry
    is still read.
    """
    tls = {"insecure_skip_verify": not verify_public_tls}
    document = {
        "modules": {
            "http_2xx": {"prober": "http", "timeout": "5s", "http": {"preferred_ip_protocol": "ip4"}},
            "https_2xx": {
                "prober": "http",
                "timeout": "5s",
                "http": {"preferred_ip_protocol": "ip4", "fail_if_not_ssl": True, "tls_config": tls},
            },
            "tcp_connect": {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4"}},
            "tls_connect": {"prober": "tcp", "timeout": "5s", "tcp": {"preferred_ip_protocol": "ip4", "tls": True, "tls_config": tls}},
        }
    }
    return dump_yaml(document)


# --- exporters --------------------------------------------------------------------------------


def render_mysql_exporter_cnf(password: str) -> str:
    """The .my.cnf mysqld_exporter reads (it ignores DATA_SOURCE_NAME since 0.15), for its own account."""
    return f'[client]\nuser = {EXPORTER_USER}\npassword = "{password}"\nhost = mysql\nport = 3306\n'


def postgres_exporter_environment(database: str) -> list[str]:
    """The PostgreSQL exporter's login: its own account on Synapse's database, its password read
    from POSTGRES_EXPORTER_PASSWORD_PATH (never in the environment)."""
    return [
        f"DATA_SOURCE_URI=postgres:5432/{database}?sslmode=disable",
        f"DATA_SOURCE_USER={EXPORTER_USER}",
        f"DATA_SOURCE_PASS_FILE={POSTGRES_EXPORTER_PASSWORD_PATH}",
    ]


def render_redis_exporter_passwords(password: str) -> str:
    """The Redis exporter's password file: JSON mapping each Redis address it scrapes to its password."""
    return json.dumps({REDIS_EXPORTER_TARGET: password})


def postgres_exporter_account(database_user: str, database: str) -> tuple[list[str], str]:
    """Command and SQL that create (or update) the exporter's login with the pg_monitor role.

    Run in the PostgreSQL container as the database's owner; psql reads the password from
    EXPORTER_PASSWORD in its environment (`\\getenv`), so it is on no process's command line.
    """
    command = ["psql", "-v", "ON_ERROR_STOP=1", "-U", database_user, "-d", database, "-f", "-"]
    sql = (
        "\\getenv password EXPORTER_PASSWORD\n"
        f"SELECT 'CREATE ROLE {EXPORTER_USER} LOGIN' "
        f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{EXPORTER_USER}')\\gexec\n"
        f"ALTER ROLE {EXPORTER_USER} WITH LOGIN PASSWORD :'password';\n"
        f"GRANT pg_monitor TO {EXPORTER_USER};\n"
    )
    return command, sql


def mysql_exporter_account() -> list[str]:
    """Command that creates (or updates) the exporter's MySQL account with the grants it reads with,
    its password from EXPORTER_PASSWORD (see mysql_as_root)."""
    account = f"'{EXPORTER_USER}'@'%'"
    return mysql_as_root(
        f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{PASSWORD_PLACEHOLDER}' WITH MAX_USER_CONNECTIONS 3;\n"
        f"ALTER USER {account} IDENTIFIED BY '{PASSWORD_PLACEHOLDER}';\n"
        f"GRANT PROCESS, REPLICATION CLIENT, SELECT ON *.* TO {account};\n",
        "EXPORTER_PASSWORD",
    )


def minio_token(access_key: str, secret_key: str) -> str:
    """The bearer token MinIO accepts for its metrics: a JWT (HS512) from the root credentials.

    As `mc admin prometheus generate` makes it: issuer 'prometheus', subject the access key,
    expiring in 100 years.
    """

    def encoded(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = encoded(json.dumps({"alg": "HS512", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = encoded(json.dumps({"exp": 4102444800, "iss": "prometheus", "sub": access_key}, separators=(",", ":")).encode())
    signature = hmac.new(secret_key.encode(), f"{header}.{claims}".encode(), hashlib.sha512).digest()
    return f"{header}.{claims}.{encoded(signature)}"


# --- Grafana, Loki, Alloy (full) --------------------------------------------------------------


def render_grafana_datasources() -> str:
    """Prometheus (with the uid the dashboards name) and Loki."""
    return dump_yaml(
        {
            "apiVersion": 1,
            "datasources": [
                {
                    "name": "Prometheus",
                    "uid": DATASOURCE_UID,
                    "type": "prometheus",
                    "access": "proxy",
                    "url": f"http://prometheus:{PROMETHEUS_PORT}",
                    "isDefault": True,
                    "editable": False,
                },
                {"name": "Loki", "uid": "loki", "type": "loki", "access": "proxy", "url": f"http://loki:{LOKI_PORT}", "editable": False},
            ],
        }
    )


def render_grafana_dashboard_provider() -> str:
    """Dashboards read from a directory, not editable in the UI (the program owns them)."""
    return dump_yaml(
        {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "stack",
                    "type": "file",
                    "allowUiUpdates": False,
                    "options": {"path": GRAFANA_DASHBOARDS_DIR, "foldersFromFilesStructure": False},
                }
            ],
        }
    )


def synapse_dashboard_url(synapse_version: str) -> str:
    """Synapse's own dashboard, from the release the stack runs."""
    return f"https://raw.githubusercontent.com/element-hq/synapse/{synapse_version}/contrib/grafana/synapse.json"


def grafana_entrypoint(synapse_version: str | None) -> list[str]:
    """Grafana's start: fetch Synapse's dashboard of the deployed version once (the datasource
    uid put in place of its input), then Grafana's own start script. Without network Grafana
    starts anyway, without that dashboard."""
    if synapse_version is None:
        return ["/run.sh"]
    target = f"{GRAFANA_DASHBOARDS_DIR}/synapse-{synapse_version}.json"
    script = (
        f"mkdir -p {GRAFANA_DASHBOARDS_DIR}; "
        f"if [ ! -s {target} ]; then rm -f {GRAFANA_DASHBOARDS_DIR}/synapse-*.json; "
        f"wget -q -T 20 -O - {synapse_dashboard_url(synapse_version)} "
        f"| sed 's/${{DS_PROMETHEUS}}/{DATASOURCE_UID}/g' > {target}.new "
        f"&& mv {target}.new {target} || echo 'Synapse dashboard not fetched; starting without it'; fi; "
        "exec /run.sh"
    )
    return ["/bin/sh", "-c", script]


def _panel(panel_id: int, title: str, exprs: list[tuple[str, str]], unit: str, position: tuple[int, int]) -> dict[str, Any]:
    x, y = position
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + index), "expr": expr, "legendFormat": legend, "datasource": {"type": "prometheus", "uid": DATASOURCE_UID}}
            for index, (expr, legend) in enumerate(exprs)
        ],
    }


def overview_panels(prefix: str) -> list[tuple[str, list[tuple[str, str]], str]]:
    """The overview's panels: title, (query, legend) pairs and unit."""
    selector = f'name=~"{prefix}-.+"'
    return [
        ("Host CPU busy", [('1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))', "cpu")], "percentunit"),
        ("Host memory used", [("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "memory")], "percentunit"),
        (
            "Disk used",
            [('1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}', "{{mountpoint}}")],
            "percentunit",
        ),
        ("Services up", [('probe_success{job="probe"}', "{{service}} {{instance}}")], "none"),
        (
            "Container CPU against its limit",
            [
                (
                    f"sum by (name) (rate(container_cpu_usage_seconds_total{{{selector}}}[5m]))"
                    f" / on (name) (max by (name) (container_spec_cpu_quota{{{selector}}}) / max by (name) (container_spec_cpu_period{{{selector}}}))",
                    "{{name}}",
                )
            ],
            "percentunit",
        ),
        (
            "Container memory against its limit",
            [
                (
                    f"max by (name) (container_memory_working_set_bytes{{{selector}}})"
                    f" / on (name) max by (name) (container_spec_memory_limit_bytes{{{selector}}} > 0)",
                    "{{name}}",
                )
            ],
            "percentunit",
        ),
        (
            "Synapse: requests and message sends",
            [
                ('sum(rate(synapse_http_server_requests_received_total{job="synapse"}[5m]))', "requests/s"),
                ('sum(rate(synapse_http_server_response_time_seconds_count{servlet="RoomSendEventRestServlet"}[5m]))', "sends/s"),
            ],
            "reqps",
        ),
        (
            "VoiceGrow: connections, ASR and TTS success",
            [
                ("sum(voicegrow_websocket_connections)", "connections"),
                ('sum(rate(voicegrow_asr_requests_total{result="success"}[10m])) / sum(rate(voicegrow_asr_requests_total[10m]))', "ASR success"),
                ('sum(rate(voicegrow_tts_requests_total{result="success"}[10m])) / sum(rate(voicegrow_tts_requests_total[10m]))', "TTS success"),
            ],
            "none",
        ),
        (
            "Databases: connections",
            [("sum(pg_stat_database_numbackends)", "PostgreSQL"), ("mysql_global_status_threads_connected", "MySQL"), ("redis_connected_clients", "Redis")],
            "none",
        ),
        (
            "Backups: hours since the last success, archive size",
            [("(time() - backup_last_success_timestamp_seconds) / 3600", "hours"), ("backup_last_size_bytes / 1e6", "MB")],
            "none",
        ),
    ]


def render_overview_dashboard(prefix: str, stack: str) -> str:
    """The stack's overview: host, containers against their limits, both systems and the backups."""
    panels = [
        _panel(index + 1, title, exprs, unit, ((index % 2) * 12, (index // 2) * 8))
        for index, (title, exprs, unit) in enumerate(overview_panels(prefix))
    ]
    dashboard = {
        "uid": f"{prefix}-overview",
        "title": f"{stack}: overview",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "panels": panels,
    }
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def grafana_environment(root_url: str | None) -> list[str]:
    """Grafana's settings: no sign-up, no anonymous access, no phoning home."""
    environment = [
        "GF_USERS_ALLOW_SIGN_UP=false",
        "GF_AUTH_ANONYMOUS_ENABLED=false",
        "GF_ANALYTICS_REPORTING_ENABLED=false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
        f"GF_PATHS_PROVISIONING={GRAFANA_PROVISIONING_DIR}",
    ]
    if root_url is not None:
        environment.append(f"GF_SERVER_ROOT_URL={root_url}")
    return environment


def render_loki_yml(log_retention: str) -> str:
    """Loki as one process on its volume, deleting logs older than the retention."""
    return dump_yaml(
        {
            "auth_enabled": False,
            "server": {"http_listen_port": LOKI_PORT, "log_level": "warn"},
            "common": {
                "path_prefix": "/loki",
                "replication_factor": 1,
                "ring": {"kvstore": {"store": "inmemory"}},
                "storage": {"filesystem": {"chunks_directory": "/loki/chunks", "rules_directory": "/loki/rules"}},
            },
            "schema_config": {
                "configs": [
                    {
                        "from": "2024-01-01",
                        "store": "tsdb",
                        "object_store": "filesystem",
                        "schema": "v13",
                        "index": {"prefix": "index_", "period": "24h"},
                    }
                ]
            },
            "limits_config": {"retention_period": log_retention},
            "compactor": {
                "working_directory": "/loki/compactor",
                "retention_enabled": True,
                "delete_request_store": "filesystem",
            },
            "analytics": {"reporting_enabled": False},
        }
    )


def render_alloy_config(project: str, stack: str) -> str:
    """Alloy: every container of this stack (by its labels) into Loki, labelled by container and component;
    it reads the engine through the engine API filter."""
    # Docker discovery turns the label `<project>.component` into this meta label.
    component_label = "__meta_docker_container_label_" + f"{project}_component".replace(".", "_").replace("-", "_")
    return render_template(
        "alloy.river.j2",
        engine_api_url=ENGINE_API_URL,
        project=project,
        stack=stack,
        component_label=component_label,
        loki_port=LOKI_PORT,
    )
