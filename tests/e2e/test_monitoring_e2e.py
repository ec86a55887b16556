"""Basic monitoring of the `test` stack on a real Docker engine: every target is scraped, and an
outage reaches a person.

Synapse, the proxy and the backup job run with Prometheus, Alertmanager and the node and
blackbox exporters (stand-ins from Debian's packages). Alertmanager's `webhook` receiver points
at an HTTP server this test runs on the engine's host. Stopping Synapse must fire SynapseDown and
its recovery must send a resolved notification; a failing backup must fire BackupFailed. The time
from each fault to its notification is recorded.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import AppliedStack, apply_program
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.stacks import ROOT, assert_second_up_changes_nothing, host_address_for_containers, host_ports, local_overrides, record_figure
from tests.rendered.processes import free_port

pytestmark = pytest.mark.e2e
PREFIX = "e2e-mon"
PORT = host_ports(18700)
SCRAPE_INTERVAL = "5s"
MONITORING = ("monitoring-prometheus", "monitoring-alertmanager", "monitoring-node-exporter", "monitoring-blackbox-exporter")


class Notifications:
    """Alertmanager's webhook calls, with the time each arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.port = 0
        self.refuse = False
        """Answer 503, as a receiver that is down would."""

    def add(self, payload: dict[str, Any]) -> None:
        with self.lock:
            self.received.append((time.monotonic(), payload))

    def first(self, alert: str, status: str, after: float) -> float | None:
        """When a notification saying `alert` is `status` first arrived after `after`."""
        with self.lock:
            for arrived, payload in self.received:
                if arrived >= after and any(
                    item["labels"].get("alertname") == alert and item["status"] == status for item in payload["alerts"]
                ):
                    return arrived
        return None


def _webhook_server(notifications: Notifications) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if notifications.refuse:
                self.send_response(503)
            else:
                notifications.add(payload)
                self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def notifications() -> Iterator[Notifications]:
    collected = Notifications()
    server = _webhook_server(collected)
    collected.port = server.server_address[1]
    yield collected
    server.shutdown()


@pytest.fixture(scope="module")
def stack(notifications: Notifications, engine: docker.DockerClient) -> Iterator[AppliedStack]:
    require_engine()
    url = f"http://{host_address_for_containers(engine)}:{notifications.port}/alerts"
    overrides = local_overrides(
        PREFIX,
        PORT,
        {
            "voicegrow": {"enabled": False},
            "monitoring": {"scrape_interval": SCRAPE_INTERVAL, "receivers": ["webhook"]},
        },
    )
    applied = apply_program(ROOT, "test", overrides, secrets={"alert_webhook_url": url})
    try:
        record_figure("e2e", "monitoring.apply_to_all_healthy", applied.seconds_to_ready, "test stack, basic monitoring")
        yield applied
    finally:
        applied.destroy()


def _prometheus(engine: docker.DockerClient, path: str) -> dict[str, Any]:
    """Prometheus's HTTP API from inside its container (nothing of it is published)."""
    container = engine.containers.get(f"{PREFIX}-monitoring-prometheus")
    result = run_in(container, ["wget", "-q", "-O", "-", f"http://127.0.0.1:9090{path}"], apart=True)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def test_the_monitoring_containers_run_and_none_is_published(stack: AppliedStack, engine: docker.DockerClient) -> None:
    for name in MONITORING:
        state = engine.api.inspect_container(f"{PREFIX}-{name}")
        assert state["State"]["Health"]["Status"] == "healthy", name
        assert not state["HostConfig"]["PortBindings"], name


def test_second_up_of_the_unchanged_program_changes_nothing(stack: AppliedStack) -> None:
    assert_second_up_changes_nothing(stack, "monitoring")


def test_every_scrape_target_is_up(stack: AppliedStack, engine: docker.DockerClient) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = _prometheus(engine, "/api/v1/targets")["data"]["activeTargets"]
        return targets if targets and all(target["health"] == "up" for target in targets) else None

    targets = _wait(all_up, 60, "every target up")
    assert {target["labels"]["job"] for target in targets} == {"prometheus", "alertmanager", "node", "blackbox", "backup", "probe", "public"}


def test_every_probe_succeeds_inside_the_stack_and_through_the_proxy(stack: AppliedStack, engine: docker.DockerClient) -> None:
    def all_succeed() -> list[dict[str, Any]] | None:
        results = _prometheus(engine, "/api/v1/query?query=probe_success")["data"]["result"]
        return results if results and all(result["value"][1] == "1" for result in results) else None

    results = _wait(all_succeed, 60, "every probe succeeding")
    services = {result["metric"]["service"] for result in results}
    assert services == {"synapse", "postgres", "wellknown", "proxy"}


def test_stopping_synapse_notifies_and_its_recovery_resolves(
    stack: AppliedStack, engine: docker.DockerClient, notifications: Notifications
) -> None:
    synapse = engine.containers.get(f"{PREFIX}-synapse")
    stopped = time.monotonic()
    synapse.stop(timeout=10)
    try:
        fired = _wait(lambda: notifications.first("SynapseDown", "firing", stopped), 240, "the SynapseDown notification")
    finally:
        synapse.start()
    started = time.monotonic()
    resolved = _wait(lambda: notifications.first("SynapseDown", "resolved", started), 240, "the resolved notification")
    record_figure("e2e", "monitoring.synapse_down_to_notification", fired - stopped, "for 1m, scrape 5s, group_wait 30s")
    record_figure("e2e", "monitoring.synapse_back_to_resolved", resolved - started)
    assert fired - stopped < 5 * 60  # the VoiceGrow guide's recovery target for a service (§9.1)


def test_a_failing_backup_notifies(stack: AppliedStack, engine: docker.DockerClient, notifications: Notifications) -> None:
    backup = engine.containers.get(f"{PREFIX}-backup")
    # The database password file gone: pg_dump is refused at once.
    assert backup.exec_run(["mv", "/etc/backup/pgpass", "/etc/backup/pgpass.away"]).exit_code == 0
    failed = time.monotonic()
    try:
        assert backup.exec_run(["backup-now"]).exit_code != 0
        fired = _wait(lambda: notifications.first("BackupFailed", "firing", failed), 180, "the BackupFailed notification")
    finally:
        backup.exec_run(["mv", "/etc/backup/pgpass.away", "/etc/backup/pgpass"])
    record_figure("e2e", "monitoring.backup_failed_to_notification", fired - failed, "for 0m, scrape 5s, group_wait 30s")


def _alert_test() -> subprocess.CompletedProcess[str]:
    """scripts/alert-test.sh as an operator runs it, on this stack's engine and prefix."""
    environment = {**os.environ, "PREFIX": PREFIX, "WAIT_SECONDS": "90"}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "alert-test.sh"), "test"], capture_output=True, text=True, env=environment, timeout=180, check=False
    )


def test_the_alert_test_reaches_the_webhook_and_says_it_was_delivered(stack: AppliedStack, notifications: Notifications) -> None:
    sent = time.monotonic()
    result = _alert_test()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "webhook: delivered" in result.stdout
    arrived = notifications.first("AlertTest", "firing", sent)
    assert arrived is not None
    record_figure("e2e", "monitoring.alert_test_to_delivery", arrived - sent, "group_wait 30s")


def test_the_alert_test_names_a_receiver_that_refuses_and_fails(stack: AppliedStack, notifications: Notifications) -> None:
    notifications.refuse = True
    try:
        result = _alert_test()
    finally:
        notifications.refuse = False
    assert result.returncode == 1, result.stdout + result.stderr
    assert "webhook: failed" in result.stdout
