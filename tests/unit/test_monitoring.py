"""Monitoring under mocks: which containers each level runs, that none is published, retention,
receivers wired from settings and secrets, and the hosts the proxy serves it on."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pulumi
import pytest
import yaml

from components.monitoring import NO_RECEIVER_WARNING
from components.rendering.monitoring import mysql_exporter_account
from config import ConfigError
from tests.program import STACKS
from tests.unit.conftest import Evaluate, Evaluation, Registration

CONTAINER = "docker:index/container:Container"
MODES = [pytest.param(False, id="up"), pytest.param(True, id="preview")]
BASIC = {"monitoring-prometheus", "monitoring-alertmanager", "monitoring-node-exporter", "monitoring-blackbox-exporter"}
FULL = BASIC | {
    "monitoring-grafana",
    "monitoring-loki",
    "monitoring-alloy",
    "monitoring-cadvisor",
    "monitoring-engine-api",
    "monitoring-engine-api-files",  # writes its configuration into its volume, then exits
    "monitoring-postgres-exporter",
    "monitoring-mysql-exporter",
    "monitoring-redis-exporter",
}
EMAIL = {"to": ["ops@example.com"], "sender": "alerts@example.com", "smarthost": "smtp.example.com:587", "username": "alerts"}


def _monitoring_containers(evaluation: Evaluation) -> set[str]:
    return {c.name for c in evaluation.mocks.of_type(CONTAINER) if c.name.startswith("monitoring-")}


def _upload(evaluation: Evaluation, container: str, path: str) -> dict[str, Any]:
    uploads = {upload["file"]: upload for upload in evaluation.container(container).value("uploads")}
    return uploads[path]


def _alertmanager(evaluation: Evaluation) -> dict[str, Any]:
    return yaml.safe_load(_upload(evaluation, "monitoring-alertmanager", "/etc/alertmanager/alertmanager.yml")["content"])


def _prometheus_args(evaluation: Evaluation) -> list[str]:
    return evaluation.container("monitoring-prometheus").value("command")


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", ["dev", "test"])
def test_basic_monitoring_runs_prometheus_alertmanager_and_two_exporters(evaluate: Evaluate, stack: str, preview: bool) -> None:
    assert _monitoring_containers(evaluate(stack, preview=preview)) == BASIC


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_full_monitoring_adds_dashboards_logs_and_exporters(evaluate: Evaluate, stack: str, preview: bool) -> None:
    assert _monitoring_containers(evaluate(stack, preview=preview)) == FULL


def test_full_monitoring_runs_only_the_exporters_of_deployed_systems(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"voicegrow": {"enabled": False}})
    assert _monitoring_containers(evaluation) == FULL - {"monitoring-mysql-exporter", "monitoring-redis-exporter"}


def test_the_stack_file_can_ask_for_full_monitoring_in_one_word(evaluate: Evaluate) -> None:
    assert _monitoring_containers(evaluate("dev", overrides={"monitoring": "full"})) == FULL - {
        "monitoring-mysql-exporter", "monitoring-redis-exporter"
    }


def test_an_unknown_level_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:monitoring\.level"):
        evaluate("dev", overrides={"monitoring": "everything"})


@pytest.mark.parametrize("stack", STACKS)
def test_no_monitoring_container_publishes_a_port(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    for container in evaluation.mocks.of_type(CONTAINER):
        if container.name.startswith("monitoring-"):
            assert not container.value("ports"), container.name


@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_is_a_component_with_its_own_network(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    assert evaluation.mocks.named("monitoring").type == "selfhosted:components:Monitoring"
    assert evaluation.mocks.named("monitoring-network").value("name") == f"selfhosted-{stack}-monitoring"


@pytest.mark.parametrize(("stack", "retention", "size"), [("dev", "3d", "1GB"), ("test", "7d", "1GB"), ("staging", "15d", "4GB"), ("prod", "30d", "16GB")])
def test_retention_follows_the_environment_and_its_size_the_profile(evaluate: Evaluate, stack: str, retention: str, size: str) -> None:
    args = _prometheus_args(evaluate(stack))
    assert f"--storage.tsdb.retention.time={retention}" in args
    assert f"--storage.tsdb.retention.size={size}" in args


def test_retention_can_be_set(evaluate: Evaluate) -> None:
    args = _prometheus_args(evaluate("prod", overrides={"monitoring": {"retention": "90d", "retention_size": "50GB"}}))
    assert {"--storage.tsdb.retention.time=90d", "--storage.tsdb.retention.size=50GB"} <= set(args)


@pytest.mark.parametrize("retention", ["forever", "30", "0d"])
def test_a_bad_retention_is_refused_naming_the_key(evaluate: Evaluate, retention: str) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:monitoring\.retention"):
        evaluate("prod", overrides={"monitoring": {"retention": retention}})


@pytest.mark.parametrize(("stack", "hours"), [("dev", "72h"), ("prod", "720h")])
def test_log_retention_follows_the_environment(evaluate: Evaluate, stack: str, hours: str) -> None:
    evaluation = evaluate(stack, overrides={"monitoring": {"level": "full"}})
    loki = yaml.safe_load(_upload(evaluation, "monitoring-loki", "/etc/loki/local-config.yaml")["content"])
    assert loki["limits_config"]["retention_period"] == hours


def test_without_receivers_alerts_stay_in_alertmanager_and_the_deploy_warns(evaluate: Evaluate, monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    receivers = _alertmanager(evaluate("test"))["receivers"]
    assert receivers == [{"name": "critical"}, {"name": "warning"}]
    assert NO_RECEIVER_WARNING in warnings


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_without_receivers_are_refused_naming_the_key(evaluate: Evaluate, stack: str) -> None:
    with pytest.raises(ConfigError, match=rf"selfhosted:monitoring\.receivers is empty in {stack}: .*`scripts/alert-test.sh {stack}`"):
        evaluate(stack, overrides={"monitoring": {"receivers": []}})


def test_a_stack_with_a_receiver_deploys_without_the_warning(evaluate: Evaluate, monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warnings.append(message))
    evaluate("prod")
    assert NO_RECEIVER_WARNING not in warnings


def test_email_receiver_comes_from_settings_and_its_password_from_a_secret(evaluate: Evaluate) -> None:
    evaluation = evaluate(
        "test", overrides={"monitoring": {"receivers": ["email"], "email": EMAIL}}, secrets={"alert_smtp_password": "smtp-secret"}
    )
    email = _alertmanager(evaluation)["receivers"][0]["email_configs"][0]
    assert (email["to"], email["smarthost"], email["auth_password"]) == ("ops@example.com", "smtp.example.com:587", "smtp-secret")
    assert evaluation.container("monitoring-alertmanager").is_secret("uploads")


def test_webhook_and_wecom_receivers_are_wired_from_secrets(evaluate: Evaluate) -> None:
    wecom = {"corp_id": "ww123", "agent_id": "1000002", "to_party": "2"}
    evaluation = evaluate(
        "test",
        overrides={"monitoring": {"receivers": ["wecom", "webhook"], "wecom": wecom}},
        secrets={"alert_wecom_secret": "wecom-secret", "alert_webhook_url": "https://hooks.example.com/alerts"},
    )
    receiver = _alertmanager(evaluation)["receivers"][0]
    assert receiver["wechat_configs"][0]["api_secret"] == "wecom-secret"
    assert receiver["webhook_configs"] == [{"url": "https://hooks.example.com/alerts", "send_resolved": True}]


def test_dingtalk_runs_its_bridge_and_alertmanager_calls_it(evaluate: Evaluate) -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    evaluation = evaluate("test", overrides={"monitoring": {"receivers": ["dingtalk"]}}, secrets={"alert_dingtalk_url": url})
    assert "monitoring-dingtalk" in _monitoring_containers(evaluation)
    bridge = yaml.safe_load(_upload(evaluation, "monitoring-dingtalk", "/etc/prometheus-webhook-dingtalk/config.yml")["content"])
    assert bridge["targets"]["operators"]["url"] == url
    hooks = _alertmanager(evaluation)["receivers"][0]["webhook_configs"]
    assert hooks == [{"url": "http://dingtalk:8060/dingtalk/operators/send", "send_resolved": True}]


@pytest.mark.parametrize(
    ("receiver", "key"), [("webhook", "alert_webhook_url"), ("dingtalk", "alert_dingtalk_url"), ("wecom", "alert_wecom_secret")]
)
def test_a_receiver_without_its_secret_is_refused_naming_the_secret(evaluate: Evaluate, receiver: str, key: str) -> None:
    overrides: dict[str, Any] = {"receivers": [receiver]}
    if receiver == "wecom":
        overrides["wecom"] = {"corp_id": "ww123", "agent_id": "1", "to_user": "@all"}
    with pytest.raises(ConfigError, match=rf"selfhosted:{key} is required"):
        evaluate("test", overrides={"monitoring": overrides})


def test_email_receiver_without_its_settings_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:monitoring\.email settings are required"):
        evaluate("test", overrides={"monitoring": {"receivers": ["email"]}})


def test_critical_alerts_inhibit_the_warnings_of_their_service(evaluate: Evaluate) -> None:
    assert _alertmanager(evaluate("prod"))["inhibit_rules"] == [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["stack", "service"]}
    ]


def test_the_admin_password_is_generated_and_exported_as_a_secret(evaluate: Evaluate) -> None:
    value, secret = evaluate("prod").output("monitoring_admin_password")
    assert value == "generated-monitoring-admin-password" and secret


def test_grafana_reads_the_admin_password_from_a_secret_file(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    grafana = evaluation.container("monitoring-grafana")
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE=/etc/grafana/admin_password" in grafana.value("envs")
    assert not any("generated-monitoring-admin-password" in entry for entry in grafana.value("envs"))
    assert _upload(evaluation, "monitoring-grafana", "/etc/grafana/admin_password")["content"] == "generated-monitoring-admin-password"
    assert grafana.is_secret("uploads")


def test_synapse_metrics_are_scraped_with_the_index_label_in_full(evaluate: Evaluate) -> None:
    config = yaml.safe_load(_upload(evaluate("prod"), "monitoring-prometheus", "/etc/prometheus/prometheus.yml")["content"])
    synapse = next(job for job in config["scrape_configs"] if job["job_name"] == "synapse")
    assert synapse["static_configs"][0]["labels"]["index"] == "1"


def test_the_minio_token_is_signed_with_the_minio_credentials_and_secret(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    token = _upload(evaluation, "monitoring-prometheus", "/etc/prometheus/minio.token")["content"]
    assert token.count(".") == 2 and evaluation.container("monitoring-prometheus").is_secret("uploads")


def test_prometheus_reaches_both_systems_and_the_prober_finds_the_public_hosts_at_the_proxy(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    networks = [network["name"] for network in evaluation.container("monitoring-prometheus").value("networksAdvanced")]
    assert networks == ["selfhosted-prod-monitoring", "selfhosted-prod-synapse", "selfhosted-prod-voicegrow"]
    prober = [network["name"] for network in evaluation.container("monitoring-blackbox-exporter").value("networksAdvanced")]
    assert prober[-1] == "selfhosted-prod-front"
    [proxy] = evaluation.container("proxy").value("networksAdvanced")
    assert proxy["name"] == "selfhosted-prod-front" and "matrix.example.com" in proxy["aliases"]


def test_grafana_is_served_by_the_proxy_on_its_own_host(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"monitoring": {"grafana_host": "grafana.example.com"}})
    conf = evaluation.mocks.files("proxy")["/etc/nginx/conf.d/default.conf"]
    assert "server_name grafana.example.com;" in conf and "proxy_pass http://grafana;" in conf


def test_prometheus_behind_the_proxy_needs_the_admin_login(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"monitoring": {"prometheus_host": "prometheus.example.com"}})
    files = evaluation.mocks.files("proxy")
    conf = files["/etc/nginx/conf.d/default.conf"]
    server = conf[conf.index("server_name prometheus.example.com;") :]
    assert "auth_basic_user_file /etc/nginx/conf.d/monitoring.htpasswd;" in server.split("}\n}", 1)[0]
    assert files["/etc/nginx/conf.d/monitoring.htpasswd"].startswith("admin:{SHA}")


def test_monitoring_hosts_without_tls_are_refused(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="monitoring hosts need tls"):
        evaluate("dev", overrides={"monitoring": {"level": "full", "grafana_host": "grafana.localhost"}})


def test_grafana_host_needs_full_monitoring(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:monitoring\.grafana_host needs level 'full'"):
        evaluate("test", overrides={"monitoring": {"grafana_host": "grafana.example.com"}})


def test_database_exporters_log_in_with_an_account_of_their_own(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    envs = evaluation.container("monitoring-postgres-exporter").value("envs")
    assert envs == [
        "DATA_SOURCE_URI=postgres:5432/synapse?sslmode=disable",
        "DATA_SOURCE_USER=exporter",
        "DATA_SOURCE_PASS_FILE=/etc/postgres-exporter/password",
    ]
    password = _upload(evaluation, "monitoring-postgres-exporter", "/etc/postgres-exporter/password")["content"]
    assert password == "generated-monitoring-exporter-password"
    cnf = _upload(evaluation, "monitoring-mysql-exporter", "/etc/mysqld-exporter/.my.cnf")["content"]
    assert cnf.startswith('[client]\nuser = exporter\npassword = "generated-monitoring-exporter-password"\n')


def test_exporter_accounts_read_statistics_only_and_are_made_before_the_exporters_start(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    evaluation = evaluate("prod")
    commands = {command.name: command for command in evaluation.mocks.of_type("command:local:Command")}
    postgres, mysql = commands["monitoring-postgres-account"], commands["monitoring-mysql-account"]
    assert postgres.value("create").startswith("docker exec -i -e EXPORTER_PASSWORD selfhosted-prod-synapse-postgres ")
    assert "GRANT pg_monitor TO exporter;" in postgres.value("stdin")
    assert mysql.value("create").startswith("docker exec -e EXPORTER_PASSWORD selfhosted-prod-voicegrow-mysql ")
    # What the commands do to real servers: tests/rendered/test_database_accounts.py.
    assert shlex.split(mysql.value("create"))[5:] == mysql_exporter_account()
    assert "monitoring-postgres-account" in registrations["monitoring-postgres-exporter"].dependencies
    assert "monitoring-mysql-account" in registrations["monitoring-mysql-exporter"].dependencies


def test_the_exporter_password_never_appears_on_a_command_line(evaluate: Evaluate) -> None:
    for command in evaluate("prod").mocks.of_type("command:local:Command"):
        assert "generated-monitoring-exporter-password" not in command.value("create"), command.name


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_offers_no_lifecycle_api(evaluate: Evaluate, stack: str) -> None:
    command = evaluate(stack).container("monitoring-prometheus").value("command")
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    assert not any("lifecycle" in argument for argument in command)


def test_the_redis_exporter_reads_its_password_from_a_secret_file(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    exporter = evaluation.container("monitoring-redis-exporter")
    assert exporter.value("envs") == ["REDIS_ADDR=redis://redis:6379", "REDIS_PASSWORD_FILE=/etc/redis-exporter/passwords.json"]
    passwords = _upload(evaluation, "monitoring-redis-exporter", "/etc/redis-exporter/passwords.json")["content"]
    assert json.loads(passwords) == {"redis://redis:6379": "generated-redis-password"}
    assert exporter.is_secret("uploads")
