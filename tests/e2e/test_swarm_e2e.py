"""The `test` stack on a single-node Docker Swarm (`orchestrator: swarm`), used as on one engine.

The engine becomes a swarm manager for this module (see harness/swarm.py); the node is labelled
for data, apps and ingress by the program. Synapse, VoiceGrow (the probe as its server, two
replicas), basic monitoring and the proxy run as services; users reach them through the proxy's
host-mode ports. Then Swarm's own mechanisms are exercised: a frozen task replaced, an image
rolled onto the replicas under load, a broken image rolled back; last, a backup taken in the
backup service's task is restored by the documented command, which scales the services down
and up again.
Ports 19400-19409 (moved by the clone's offset).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from components.rendering.voicegrow import SERVER_SECRET_NAMES
from tests.e2e.container_exec import run_in
from tests.e2e.harness import ApplyError
from tests.e2e.harness.swarm import swarm_manager
from tests.e2e.hostnames import resolve_to_loopback
from tests.e2e.matrix_client import converse, read_messages
from tests.e2e.stacks import (
    MYSQL,
    PROBE_IMAGE,
    ROOT,
    ChangedStack,
    assert_second_up_changes_nothing,
    deployed_stack,
    RequestLoad,
    host_ports,
    local_overrides,
    record_figure,
)
from tests.e2e.websocket_client import echo

pytestmark = pytest.mark.e2e

PREFIX = "e2e-swarm"
PORT = host_ports(19400)
PROXY_PORT = PORT + 6
DOMAIN = "e2e-swarm.test"
MATRIX_HOST, WS_HOST, API_HOST = f"matrix.{DOMAIN}", f"ws.{DOMAIN}", f"api.{DOMAIN}"
SERVERS = ("voicegrow-server-1", "voicegrow-server-2")
SERVICES = (
    "synapse-postgres", "synapse", "synapse-wellknown",
    "voicegrow-mysql", "voicegrow-redis", "voicegrow-minio", *SERVERS,
    "monitoring-prometheus", "monitoring-alertmanager", "monitoring-node-exporter", "monitoring-blackbox-exporter",
    "proxy", "backup",
)

# Every secret a service of the stack reads (VoiceGrow's server, its data services, PostgreSQL).
SECRET_VARIABLES = (
    *SERVER_SECRET_NAMES, "POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
)


@dataclass(frozen=True)
class Swarm:
    changed: ChangedStack
    node: str


def _base(node: str) -> dict:
    return {
        "orchestrator": "swarm",
        "swarm": {"nodes": {node: ["data", "app", "ingress"]}},
        "tls": "off",
        # Host-mode ports are published on every address of the node.
        "proxy": {"bind": "0.0.0.0"},
        "synapse": {"server_name": DOMAIN, "public_host": MATRIX_HOST},
        "voicegrow": {"server_image": PROBE_IMAGE, "replicas": 2, "secret_files": True, "ws_host": WS_HOST, "api_host": API_HOST},
    }


@pytest.fixture(scope="module")
def swarm(engine: docker.DockerClient) -> Iterator[Swarm]:
    with swarm_manager():
        node = engine.info()["Name"]
        base = _base(node)
        with deployed_stack("test", local_overrides(PREFIX, PORT, base), "swarm", "test stack on a single-node swarm") as applied:
            with resolve_to_loopback(DOMAIN):
                yield Swarm(ChangedStack(applied, PREFIX, PORT, base), node)


def _service(engine: docker.DockerClient, name: str) -> dict:
    return engine.api.inspect_service(f"{PREFIX}-{name}")


def _tasks(engine: docker.DockerClient, name: str) -> list[dict]:
    return engine.api.tasks(filters={"service": f"{PREFIX}-{name}"})


def _running_task(engine: docker.DockerClient, name: str) -> dict:
    running = [task for task in _tasks(engine, name) if task["Status"]["State"] == "running"]
    assert len(running) == 1, [task["Status"] for task in _tasks(engine, name)]
    return running[0]


def _get(host: str, path: str, timeout: float = 10) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", PROXY_PORT, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _variant(engine: docker.DockerClient, image: str, tag: str, extra: str = "") -> str:
    """A new image (a new id) on top of `image`, as a new release of it would be."""
    dockerfile = f"FROM {image}\nLABEL e2e.variant={tag}\n{extra}".encode()
    reference = f"{image.rsplit(':', 1)[0]}:{tag}"
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=reference, rm=True)
    return reference


def test_every_service_runs_one_healthy_task_on_the_labelled_node(swarm: Swarm, engine: docker.DockerClient) -> None:
    names = sorted(s["Spec"]["Name"] for s in engine.api.services(filters={"label": "selfhosted.stack=test"}) if s["Spec"]["Name"].startswith(f"{PREFIX}-"))
    assert names == sorted(f"{PREFIX}-{name}" for name in SERVICES)
    node = engine.api.inspect_node(swarm.node)
    assert {key: value for key, value in node["Spec"]["Labels"].items() if key.startswith(f"{PREFIX}.")} == {
        f"{PREFIX}.data": "true", f"{PREFIX}.app": "true", f"{PREFIX}.ingress": "true"
    }
    for name in SERVICES:
        task = _running_task(engine, name)
        container = engine.api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])
        assert container["State"]["Health"]["Status"] == "healthy", name


def test_no_container_runs_outside_the_swarm_but_the_one_time_file_preparations(swarm: Swarm) -> None:
    assert all(name.endswith("-files") for name in swarm.changed.stack.containers), swarm.changed.stack.containers


def test_second_up_of_the_unchanged_program_changes_nothing(swarm: Swarm) -> None:
    assert_second_up_changes_nothing(swarm.changed.stack, "swarm")


def test_secrets_are_files_of_the_services_user_and_never_environment(swarm: Swarm, engine: docker.DockerClient) -> None:
    spec = _service(engine, "synapse")["Spec"]["TaskTemplate"]["ContainerSpec"]
    homeserver = next(s for s in spec["Secrets"] if s["File"]["Name"] == "/config/homeserver.yaml")
    assert (homeserver["File"]["UID"], homeserver["File"]["Mode"]) == ("991", 0o400)
    task = _running_task(engine, "synapse")
    synapse = engine.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    listing = run_in(synapse, ["stat", "-c", "%u %a", "/config/homeserver.yaml"]).output.split()
    assert listing == ["991", "400"]
    for name in ("synapse-postgres", "voicegrow-mysql", "voicegrow-minio", *SERVERS):
        environment = _service(engine, name)["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env") or []
        secret = [item for item in environment if item.split("=", 1)[0] in SECRET_VARIABLES and not item.endswith("=")]
        assert secret == [], name


def test_the_networks_are_encrypted_overlays(swarm: Swarm, engine: docker.DockerClient) -> None:
    for component in ("synapse", "voicegrow", "monitoring", "front"):
        network = engine.api.inspect_network(f"{PREFIX}-{component}")
        assert (network["Driver"], network["Options"].get("encrypted"), network["Attachable"]) == ("overlay", "", True), component


def test_two_users_converse_through_the_proxy(swarm: Swarm) -> None:
    conversation = converse(
        f"http://{MATRIX_HOST}:{PROXY_PORT}", registration_token=swarm.changed.stack.outputs["synapse_registration_token"]
    )
    assert conversation.sender.endswith(f":{DOMAIN}")
    status, body = _get(DOMAIN, "/.well-known/matrix/server")
    assert (status, json.loads(body)) == (200, {"m.server": f"{MATRIX_HOST}:443"})


def test_voicegrow_reaches_mysql_redis_and_minio_and_echoes_over_websocket(swarm: Swarm) -> None:
    status, body = _get(API_HOST, "/api/v1/health/detail")
    assert status == 200, body
    detail = json.loads(body)
    assert (detail["status"], detail["mysql"]["ok"], detail["redis"]["ok"], detail["minio"]["ok"]) == ("ok", True, True, True), detail
    text = f"hello {uuid.uuid4()}"
    assert echo("127.0.0.1", PROXY_PORT, text, host=WS_HOST, path="/ws").text == text


def test_both_replicas_answer_through_the_proxy(swarm: Swarm) -> None:
    instances = {json.loads(_get(API_HOST, "/api/v1/instance")[1])["instance"] for _ in range(20)}
    assert len(instances) == 2, instances


def test_a_frozen_task_is_replaced_by_swarm(swarm: Swarm, engine: docker.DockerClient) -> None:
    frozen_task = _running_task(engine, "voicegrow-server-1")
    # A hung process: it neither answers nor exits. No healer runs on Swarm.
    engine.api.kill(frozen_task["Status"]["ContainerStatus"]["ContainerID"], signal="SIGSTOP")
    frozen = time.monotonic()
    deadline = frozen + 240
    while time.monotonic() < deadline:
        running = [t for t in _tasks(engine, "voicegrow-server-1") if t["Status"]["State"] == "running" and t["ID"] != frozen_task["ID"]]
        if running:
            break
        time.sleep(1)
    else:
        raise AssertionError("Swarm did not replace the frozen task within 240 s")
    record_figure("e2e", "swarm.frozen_task_replaced", time.monotonic() - frozen)
    states = {t["ID"]: t["Status"]["State"] for t in _tasks(engine, "voicegrow-server-1")}
    assert states[frozen_task["ID"]] in ("failed", "shutdown", "complete"), states
    # The new task has a new address: the proxy learns it by itself, without a deploy.
    deadline = time.monotonic() + 60
    instances: set[str] = set()
    while len(instances) < 2 and time.monotonic() < deadline:
        status, body = _get(API_HOST, "/api/v1/instance")
        if status == 200:
            instances.add(json.loads(body)["instance"])
        time.sleep(0.2)
    record_figure("e2e", "swarm.frozen_task_back_behind_the_proxy", time.monotonic() - frozen)
    assert len(instances) == 2, f"only {instances} answered through the proxy after the replacement"


def test_an_image_change_rolls_the_replicas_without_a_failed_request(swarm: Swarm, engine: docker.DockerClient) -> None:
    before = {server: _service(engine, server)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] for server in SERVERS}
    proxy_version = _service(engine, "proxy")["Version"]["Index"]
    image = _variant(engine, PROBE_IMAGE, "swarm-2")
    started = time.monotonic()
    with RequestLoad(PROXY_PORT, API_HOST, "/api/v1/instance") as load:
        swarm.changed.update({"voicegrow": {"server_image": image}})
        # The proxy has learned the new tasks' addresses; requests keep flowing for a moment.
        time.sleep(2)
    record_figure("e2e", "swarm.replica_roll", time.monotonic() - started, f"{load.sent} requests, {len(load.failed)} failed")
    for server in SERVERS:
        service = _service(engine, server)
        assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] != before[server], server
        assert service.get("UpdateStatus", {}).get("State") in (None, "completed"), service.get("UpdateStatus")
    # Updated in place: the proxy service itself was not touched.
    assert _service(engine, "proxy")["Version"]["Index"] == proxy_version
    assert load.sent > 100 and load.failed == [], f"{len(load.failed)} of {load.sent} failed: {load.failed[:5]}"


def test_a_broken_image_rolls_back_on_its_own_and_the_replicas_keep_serving(swarm: Swarm, engine: docker.DockerClient) -> None:
    working = _service(engine, "voicegrow-server-1")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    broken = _variant(engine, PROBE_IMAGE, "swarm-broken", 'ENTRYPOINT ["/bin/false"]\n')
    started = time.monotonic()
    with RequestLoad(PROXY_PORT, API_HOST, "/api/v1/instance") as load:
        with pytest.raises(ApplyError, match="voicegrow-server-1"):
            swarm.changed.update({"voicegrow": {"server_image": broken}})
    record_figure("e2e", "swarm.broken_image_rolled_back", time.monotonic() - started, f"{load.sent} requests, {len(load.failed)} failed")
    service = _service(engine, "voicegrow-server-1")
    assert service["UpdateStatus"]["State"] in ("rollback_completed", "rollback_started"), service["UpdateStatus"]
    deadline = time.monotonic() + 120
    while _service(engine, "voicegrow-server-1")["UpdateStatus"]["State"] != "rollback_completed" and time.monotonic() < deadline:
        time.sleep(1)
    assert _service(engine, "voicegrow-server-1")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == working
    # The second replica was never touched: the deploy stopped at the first.
    assert "swarm-broken" not in _service(engine, "voicegrow-server-2")["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert load.failed == [], f"{len(load.failed)} of {load.sent} failed: {load.failed[:5]}"


def _mysql(engine: docker.DockerClient, statement: str) -> str:
    """A statement run as MySQL's root in its task, with the password from the task's secret."""
    task = _running_task(engine, "voicegrow-mysql")
    container = engine.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
    return run_in(container, ["sh", "-c", f'{MYSQL} "{statement}"']).output.strip()


def _bash(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "RESTORE_TIMEOUT": "600"},
    )


def test_a_backup_taken_in_its_task_is_restored_by_scaling_the_services_down_and_up(swarm: Swarm, engine: docker.DockerClient) -> None:
    outputs = swarm.changed.stack.outputs
    conversation = converse(f"http://{MATRIX_HOST}:{PROXY_PORT}", registration_token=outputs["synapse_registration_token"])
    row = f"swarm row {uuid.uuid4().hex[:8]}"
    _mysql(engine, f"CREATE TABLE swarm_drill (note VARCHAR(64)); INSERT INTO swarm_drill VALUES ('{row}')")

    started = time.monotonic()
    backup = _bash(outputs["backup_now_command"])
    record_figure("backup", "swarm_duration", time.monotonic() - started)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    # The loss, after the backup.
    _mysql(engine, "DROP TABLE swarm_drill")
    assert "doesn't exist" in _mysql(engine, "SELECT note FROM swarm_drill")

    stopped = ("synapse", *SERVERS)
    versions = {name: _service(engine, name)["Version"]["Index"] for name in stopped}
    started = time.monotonic()
    restored = _bash(outputs["backup_restore_command"])
    record_figure("restore", "swarm_duration", time.monotonic() - started, "scaled to 0 and back")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    for name in stopped:
        assert f"stopping {PREFIX}-{name}" in restored.stdout and f"{PREFIX}-{name} is running" in restored.stdout, restored.stdout
        service = _service(engine, name)
        # Scaled down and back up: one task again, healthy.
        assert service["Version"]["Index"] > versions[name] and service["Spec"]["Mode"]["Replicated"]["Replicas"] == 1, name
        task = _running_task(engine, name)
        assert engine.api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])["State"]["Health"]["Status"] == "healthy", name

    assert _mysql(engine, "SELECT note FROM swarm_drill") == row
    # The new tasks have new addresses, which the proxy learns by itself within seconds; until
    # then a request may wait on the old address.
    restarted = time.monotonic()
    while time.monotonic() < restarted + 120:
        try:
            if _get(MATRIX_HOST, "/_matrix/client/versions", timeout=5)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(1)
    record_figure("restore", "swarm_back_behind_the_proxy", time.monotonic() - restarted)
    messages = read_messages(f"http://{MATRIX_HOST}:{PROXY_PORT}", conversation.sender, conversation.password, conversation.room_id)
    assert conversation.text in messages
