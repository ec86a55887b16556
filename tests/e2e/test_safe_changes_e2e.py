"""Day two on a real engine: changes that back up first, replicas replaced one at a time behind
the proxy, passwords rotated in one deploy, and a hung service that heals itself.

One `test` stack (Synapse, VoiceGrow with two replicas of the probe, the proxy without TLS, the
backup job) is deployed once; each test makes one `pulumi up` of a change on it, in file order.
Ports 18940-18949 (moved by the clone's offset).
"""

from __future__ import annotations

import http.client
import io
import json
import time
from collections.abc import Iterator
from datetime import datetime

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import ApplyError
from tests.e2e.stacks import (
    LOCAL_IMAGES,
    PROBE_IMAGE,
    ChangedStack,
    RequestLoad,
    deployed_stack,
    host_ports,
    local_overrides,
    record_figure,
)

pytestmark = pytest.mark.e2e

PREFIX = "e2e-safe"
PORT = host_ports(18940)
PROXY_PORT = PORT + 6
API_HOST = "api.e2e-safe.test"
VOICEGROW = {"server_image": PROBE_IMAGE, "replicas": 2, "api_host": API_HOST, "ws_host": "ws.e2e-safe.test"}
BASE = {"tls": "off", "synapse": {"server_name": "e2e-safe.test"}, "voicegrow": VOICEGROW}
SERVERS = ("voicegrow-server-1", "voicegrow-server-2")


@pytest.fixture(scope="module")
def deployed() -> Iterator[ChangedStack]:
    # deployed_stack destroys the first stack, which hands over to the last update's.
    with deployed_stack("test", local_overrides(PREFIX, PORT, BASE), "safe") as applied:
        yield ChangedStack(applied, PREFIX, PORT, BASE)


def _name(service: str) -> str:
    return f"{PREFIX}-{service}"


def _state(engine: docker.DockerClient, service: str) -> dict:
    return engine.api.inspect_container(_name(service))["State"]


def _timestamp(text: str) -> float:
    # Docker's RFC 3339 with nanoseconds; microseconds are enough.
    return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()


def _variant(engine: docker.DockerClient, image: str, tag: str) -> str:
    """A new image (a new id) on top of `image`, as a new release of it would be."""
    dockerfile = f"FROM {image}\nLABEL e2e.variant={tag}\n".encode()
    reference = f"{image.rsplit(':', 1)[0]}:{tag}"
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=reference, rm=True)
    return reference


def _archives(engine: docker.DockerClient) -> dict[str, float]:
    """Archive name -> when it was written (seconds since the epoch)."""
    listing = run_in(engine.containers.get(_name("backup")), ["sh", "-c", "cd /backups && for f in backup-*.tar; do [ ! -e \"$f\" ] || stat -c '%n %Y' \"$f\"; done"])
    assert listing.exit_code == 0, listing.output
    return {name: float(mtime) for name, mtime in (line.split() for line in listing.output.splitlines())}


def _wait_healthy_again(engine: docker.DockerClient, service: str, started_at: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        state = _state(engine, service)
        if state["Running"] and state["StartedAt"] != started_at and state["Health"]["Status"] == "healthy":
            return
        time.sleep(0.5)
    raise AssertionError(f"{service} was not restarted and healthy again within {timeout} s: {state}")


def test_a_frozen_synapse_is_restarted_and_healthy_again(deployed: ChangedStack, engine: docker.DockerClient) -> None:
    started_at = _state(engine, "synapse")["StartedAt"]
    # A hung process: it neither answers nor exits, so Docker's restart policy never acts.
    engine.api.kill(_name("synapse"), signal="SIGSTOP")
    frozen = time.monotonic()
    _wait_healthy_again(engine, "synapse", started_at, timeout=240)
    record_figure("e2e", "safe.heal.frozen_synapse_to_healthy", time.monotonic() - frozen)
    assert f"{_name('synapse')} is unhealthy: restarting it" in engine.api.logs(_name("healer")).decode()


def test_a_container_the_healer_restarted_is_not_restarted_again_before_its_backoff(
    deployed: ChangedStack, engine: docker.DockerClient
) -> None:
    # A service of the stack that never becomes healthy: 15 s of start period, then two failed
    # checks 2 s apart. It stops at once on SIGTERM, so that a restart takes no stop timeout.
    name = _name("never-healthy")
    container = engine.containers.run(
        LOCAL_IMAGES["redis"],
        ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        name=name,
        labels={"selfhosted.stack": "test"},
        healthcheck={"test": ["CMD-SHELL", "exit 1"], "interval": 2 * 10**9, "retries": 2, "start_period": 15 * 10**9},
        detach=True,
    )
    try:
        waiting = f"{name} is unhealthy, not restarted: restarted "
        deadline = time.monotonic() + 150
        while waiting not in engine.api.logs(_name("healer")).decode() and time.monotonic() < deadline:
            time.sleep(1)
        logs = engine.api.logs(_name("healer")).decode()
        assert f"{name} is unhealthy: restarting it" in logs
        assert waiting in logs, logs[-2000:]
        # Unhealthy again after its restart, and still left alone: the next restart waits 60 s.
        container.reload()
        assert container.attrs["State"]["Health"]["Status"] == "unhealthy"
        assert logs.count(f"{name} is unhealthy: restarting it") == 1
        assert "waiting 60 s before the next restart" in logs.split(waiting, 1)[1].splitlines()[0]
    finally:
        container.remove(force=True)


def test_a_synapse_image_change_backs_up_before_the_container_is_replaced(
    deployed: ChangedStack, engine: docker.DockerClient
) -> None:
    before = set(_archives(engine))
    image = _variant(engine, LOCAL_IMAGES["synapse"], "v1.163.2-next")
    updated = deployed.update({"images": {"synapse": image}})
    new = {name: mtime for name, mtime in _archives(engine).items() if name not in before}
    assert [name for name in new if name.endswith("-before-change.tar")] == list(new), new
    assert len(new) == 1, new
    started = _timestamp(_state(engine, "synapse")["StartedAt"])
    assert max(new.values()) <= started, "the archive was written after the new Synapse started"
    assert _name("synapse") in updated.removed_logs
    backup = next(timing for timing in updated.timings if timing.name == "backup-before-change")
    record_figure("e2e", "safe.backup_before_change", backup.seconds)


def test_a_failed_backup_stops_the_deploy_and_the_old_synapse_keeps_serving(
    deployed: ChangedStack, engine: docker.DockerClient
) -> None:
    synapse_id = engine.api.inspect_container(_name("synapse"))["Id"]
    backup = engine.containers.get(_name("backup"))
    # pg_dump can no longer log in: the next backup fails.
    assert backup.exec_run(["sh", "-c", "cp /etc/backup/pgpass /tmp/pgpass && sed -i 's/:[^:]*$/:wrong/' /etc/backup/pgpass"]).exit_code == 0
    image = _variant(engine, LOCAL_IMAGES["synapse"], "v1.163.2-after")
    try:
        with pytest.raises(ApplyError, match="backup FAILED"):
            deployed.update({"images": {"synapse": image}})
    finally:
        backup.exec_run(["sh", "-c", "cp /tmp/pgpass /etc/backup/pgpass"])
    assert engine.api.inspect_container(_name("synapse"))["Id"] == synapse_id
    assert _state(engine, "synapse")["Health"]["Status"] == "healthy"


def test_replicas_are_replaced_one_at_a_time_without_a_failed_request(
    deployed: ChangedStack, engine: docker.DockerClient
) -> None:
    old = {server: engine.api.inspect_container(_name(server))["Id"] for server in SERVERS}
    proxy_id = engine.api.inspect_container(_name("proxy"))["Id"]
    image = _variant(engine, PROBE_IMAGE, "2")
    started = time.monotonic()
    with RequestLoad(PROXY_PORT, API_HOST, "/api/v1/instance") as load:
        updated = deployed.update({"voicegrow": {"server_image": image}})
    record_figure("e2e", "safe.replica_roll", time.monotonic() - started, f"{load.sent} requests, {len(load.failed)} failed")
    assert all(engine.api.inspect_container(_name(server))["Id"] != old[server] for server in SERVERS)
    assert engine.api.inspect_container(_name("proxy"))["Id"] == proxy_id
    first_ready = updated.ready_after("voicegrow-server-1-proxy-reload")
    second = next(t for t in updated.timings if t.name == "voicegrow-server-2")
    assert second.started >= first_ready, "the second replica was replaced before the first was back"
    assert load.sent > 100 and load.failed == [], f"{len(load.failed)} of {load.sent} failed: {load.failed[:5]}"


ROTATED = {
    "postgres_password": "rotated-postgres-1",
    "mysql_password": "rotated-mysql-1",
    "mysql_root_password": "rotated-mysql-root-1",
    "redis_password": "rotated-redis-1",
    "minio_root_user": "rotated-minio",
    "minio_root_password": "rotated-minio-password-1",
    "synapse_admin_password": "rotated-admin-password-1",
    "synapse_registration_token": "rotatedregistrationtoken1",
}


def _synapse(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def _admin_logs_in(password: str) -> bool:
    login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "admin"}, "password": password}
    return _synapse("POST", "/_matrix/client/v3/login", login)[0] == 200


def _token_valid(token: str) -> bool:
    status, answer = _synapse("GET", f"/_matrix/client/v1/register/m.login.registration_token/validity?token={token}")
    assert status == 200, answer
    return answer["valid"] is True


def test_every_password_rotates_in_one_deploy_and_the_services_stay_healthy(
    deployed: ChangedStack, engine: docker.DockerClient
) -> None:
    old_admin_password = deployed.stack.outputs["synapse_admin_password"]
    old_token = deployed.stack.outputs["synapse_registration_token"]
    assert _admin_logs_in(old_admin_password) and _token_valid(old_token)
    updated = deployed.update({}, secrets=ROTATED)
    # The files containers wrote the new password files and exited.
    for container in (name for name in updated.containers if not name.endswith("-files")):
        assert engine.api.inspect_container(container)["State"]["Health"]["Status"] == "healthy", container
    # The server reaches MySQL, Redis and the bucket with the new passwords.
    connection = http.client.HTTPConnection("127.0.0.1", PORT + 4, timeout=10)
    connection.request("GET", "/api/v1/health/detail")
    response = connection.getresponse()
    assert response.status == 200, response.read()
    # Synapse reaches PostgreSQL (its health needs the database only at start; a login needs it now).
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    connection.request("GET", "/_matrix/client/v3/register/available?username=rotation")
    assert connection.getresponse().status == 200
    # The running Synapse took the new admin password and the new registration token; the old ones are refused.
    assert _admin_logs_in(ROTATED["synapse_admin_password"]) and not _admin_logs_in(old_admin_password)
    assert _token_valid(ROTATED["synapse_registration_token"]) and not _token_valid(old_token)
    # The backup logs in with the new database passwords.
    assert engine.containers.get(_name("backup")).exec_run(["backup-now"]).exit_code == 0


def test_a_lifetime_given_to_the_registration_token_is_set_on_the_running_synapse(deployed: ChangedStack) -> None:
    token = deployed.stack.outputs["synapse_registration_token"]
    deployed.update({"synapse": {"registration_token_days": 30}}, secrets=ROTATED)
    login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "admin"}, "password": ROTATED["synapse_admin_password"]}
    status, session = _synapse("POST", "/_matrix/client/v3/login", login)
    assert status == 200, session
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    connection.request("GET", f"/_synapse/admin/v1/registration_tokens/{token}", headers={"Authorization": f"Bearer {session['access_token']}"})
    response = connection.getresponse()
    details = json.loads(response.read())
    assert response.status == 200, details
    days = (details["expiry_time"] / 1000 - time.time()) / 86400
    assert 29.9 < days <= 30, details
    assert _token_valid(token)
