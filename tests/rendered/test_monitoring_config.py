"""The monitoring files every stack renders, read by the real tools: promtool (scrape config,
rules, dashboard queries), amtool (Alertmanager config and routing) and the blackbox exporter.

Grafana, Loki and Alloy are not packaged here: their files are checked as far as their formats
allow (YAML and JSON documents with the fields they require; Alloy's blocks balanced).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.program import STACKS, run_program
from tests.rendered.debian_tools import ToolUnavailable, debian_tool
from tests.unit.mocks import RecordingMocks

pytestmark = pytest.mark.rendered
RECEIVERS = {
    "monitoring": {
        "level": "full",
        "receivers": ["email", "wecom", "dingtalk", "webhook"],
        "email": {"to": ["ops@example.com"], "sender": "alerts@example.com", "smarthost": "smtp.example.com:587", "username": "alerts"},
        "wecom": {"corp_id": "ww123", "agent_id": "1000002", "to_party": "2"},
    }
}
RECEIVER_SECRETS = {
    "alert_smtp_password": "smtp-secret",
    "alert_wecom_secret": "wecom-secret",
    "alert_dingtalk_url": "https://oapi.dingtalk.com/robot/send?access_token=abc",
    "alert_webhook_url": "https://hooks.example.com/alerts",
}


def _files(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, str] | None = None) -> dict[str, str]:
    """Every file the monitoring containers get, by path."""
    mocks = RecordingMocks()
    run_program(mocks, stack, preview=False, overrides=overrides, secrets=secrets)
    files = {}
    for container in mocks.of_type("docker:index/container:Container"):
        if container.name.startswith("monitoring-"):
            files.update({upload["file"]: upload["content"] for upload in container.value("uploads") or []})
    return files


def _tool(binary: str) -> Path:
    try:
        return debian_tool(binary)
    except ToolUnavailable as error:
        pytest.skip(str(error))


def _run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in argv], capture_output=True, text=True, cwd=cwd)


def _write_prometheus(files: dict[str, str], directory: Path) -> Path:
    """prometheus.yml and what it names, with its container paths pointed into `directory`."""
    for path in ("/etc/prometheus/rules.yml", "/etc/prometheus/minio.token"):
        if path in files:
            (directory / Path(path).name).write_text(files[path])
    config = files["/etc/prometheus/prometheus.yml"].replace("/etc/prometheus/", f"{directory}/")
    (directory / "prometheus.yml").write_text(config)
    return directory / "prometheus.yml"


@pytest.mark.parametrize("stack", STACKS)
def test_promtool_accepts_the_scrape_config_and_its_rules(stack: str, tmp_path: Path) -> None:
    result = _run(_tool("promtool"), "check", "config", _write_prometheus(_files(stack), tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rules found" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    files = _files("prod")
    files["/etc/prometheus/rules.yml"] = files["/etc/prometheus/rules.yml"].replace("up == 0", "up === 0")
    assert _run(_tool("promtool"), "check", "config", _write_prometheus(files, tmp_path)).returncode != 0


@pytest.mark.parametrize("stack", STACKS)
def test_amtool_accepts_the_alertmanager_config(stack: str, tmp_path: Path) -> None:
    (tmp_path / "alertmanager.yml").write_text(_files(stack)["/etc/alertmanager/alertmanager.yml"])
    result = _run(_tool("amtool"), "check-config", tmp_path / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_every_receiver_at_once(tmp_path: Path) -> None:
    (tmp_path / "alertmanager.yml").write_text(_files("prod", RECEIVERS, RECEIVER_SECRETS)["/etc/alertmanager/alertmanager.yml"])
    result = _run(_tool("amtool"), "check-config", tmp_path / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receiver"), [("severity=critical", "critical"), ("severity=warning", "warning")])
def test_amtool_routes_each_severity_to_its_receiver(labels: str, receiver: str, tmp_path: Path) -> None:
    (tmp_path / "alertmanager.yml").write_text(_files("prod", RECEIVERS, RECEIVER_SECRETS)["/etc/alertmanager/alertmanager.yml"])
    result = _run(_tool("amtool"), "config", "routes", "test", "--config.file", tmp_path / "alertmanager.yml", labels, "service=synapse")
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_the_blackbox_exporter_accepts_its_modules(stack: str, tmp_path: Path) -> None:
    (tmp_path / "blackbox.yml").write_text(_files(stack)["/etc/blackbox_exporter/config.yml"])
    result = _run(_tool("prometheus-blackbox-exporter"), "--config.check", f"--config.file={tmp_path / 'blackbox.yml'}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    dashboard = json.loads(_files("prod")["/var/lib/grafana/dashboards/overview.json"])
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"query:{index}", "expr": q} for index, q in enumerate(queries)]}]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    result = _run(_tool("promtool"), "check", "rules", tmp_path / "queries.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout


def test_grafana_provisions_prometheus_with_the_uid_the_dashboards_use() -> None:
    files = _files("prod")
    datasources = yaml.safe_load(files["/etc/grafana/provisioning/datasources/datasources.yml"])
    uids = {source["uid"] for source in datasources["datasources"]}
    dashboard = json.loads(files["/var/lib/grafana/dashboards/overview.json"])
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} <= uids
    provider = yaml.safe_load(files["/etc/grafana/provisioning/dashboards/dashboards.yml"])
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_loki_keeps_logs_for_the_retention_with_its_compactor() -> None:
    loki = yaml.safe_load(_files("prod")["/etc/loki/local-config.yaml"])
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["schema_config"]["configs"][0]["store"] == "tsdb"
    assert loki["limits_config"]["retention_period"] == "720h"


def test_alloy_reads_this_stacks_containers_into_loki() -> None:
    alloy = _files("prod")["/etc/alloy/config.alloy"]
    assert alloy.count("{") == alloy.count("}")
    assert 'values = ["selfhosted.stack=prod"]' in alloy
    assert 'url = "http://loki:3100/loki/api/v1/push"' in alloy
