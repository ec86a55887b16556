"""VoiceGrowStack of the `staging` stack applied to a real Docker engine, used as its clients would.

The operator's server image is replaced by the VoiceGrow probe (`e2e.local/voicegrow-probe:1`),
which gets exactly the environment the program gives the server and reports whether MySQL,
Redis and MinIO accept the credentials in it. Synapse, the proxy and the backups are left out
to keep the stack small; the staging defaults (two replicas, the medium profile) stay.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import AppliedStack
from tests.e2e.stacks import PROBE_IMAGE, deployed_stack, host_ports, local_overrides, record_figure
from tests.e2e.websocket_client import echo

pytestmark = pytest.mark.e2e
PREFIX = "e2e-vg"
PORT = host_ports(18200)
WS_PORTS = (PORT + 2, PORT + 3)
HTTP_PORTS = (PORT + 4, PORT + 5)
SERVERS = ("voicegrow-server-1", "voicegrow-server-2")
DATA_SERVICES = ("voicegrow-mysql", "voicegrow-redis", "voicegrow-minio")
CONTAINERS = (*DATA_SERVICES, *SERVERS, "healer")
MONITORING = ("monitoring-prometheus", "monitoring-alertmanager", "monitoring-node-exporter", "monitoring-blackbox-exporter")
DATA_PORTS = ("3306/tcp", "6379/tcp", "9000/tcp", "9001/tcp")
BUCKET = "voicegrow"
OVERRIDES = local_overrides(
    PREFIX,
    PORT,
    {
        "synapse": {"enabled": False},
        "proxy": {"enabled": False},
        "backup": {"enabled": False},
        "voicegrow": {"server_image": PROBE_IMAGE},
    },
)
# The medium profile (Pulumi.staging.yaml): memory MB, CPU cap (0: none, the data services share by weight), reservation MB.
MEDIUM_LIMITS = {
    "voicegrow-mysql": (1024, 0, 512),
    "voicegrow-redis": (256, 0, 128),
    "voicegrow-minio": (512, 0, 256),
    "voicegrow-server-1": (2048, 1.5, 1024),
    "voicegrow-server-2": (2048, 1.5, 1024),
}


@pytest.fixture(scope="module")
def stack() -> Iterator[AppliedStack]:
    with deployed_stack("staging", OVERRIDES, "voicegrow", "staging, 2 replicas") as applied:
        yield applied


def _inspect(engine: docker.DockerClient, name: str) -> dict:
    return engine.api.inspect_container(f"{PREFIX}-{name}")


def _get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _generated(stack: AppliedStack, name: str) -> str:
    """A password the stack generated (kept in its state, as Pulumi keeps it)."""
    return stack.resource(name, "random:index/randomPassword:RandomPassword").outputs["result"]


def _mc_environment(stack: AppliedStack) -> dict[str, str]:
    """`mc`'s alias for the MinIO container's own server, with the stack's generated root credentials."""
    user, password = _generated(stack, "minio-root-user"), _generated(stack, "minio-root-password")
    return {"MC_HOST_local": f"http://{user}:{password}@127.0.0.1:9000"}


def _mc(stack: AppliedStack, engine: docker.DockerClient, *arguments: str) -> tuple[int, str, str]:
    """`mc` inside the MinIO container: exit code, stdout, stderr."""
    minio = engine.containers.get(f"{PREFIX}-voicegrow-minio")
    result = run_in(minio, ["mc", *arguments], environment=_mc_environment(stack), apart=True)
    return result.exit_code, result.stdout, result.stderr


def _assert_all_healthy(engine: docker.DockerClient) -> None:
    for name in CONTAINERS:
        assert _inspect(engine, name)["State"]["Health"]["Status"] == "healthy", name


def test_the_stack_runs_the_data_services_two_server_replicas_the_healer_and_monitoring(stack: AppliedStack) -> None:
    services = [name for name in stack.containers if not name.endswith("-files")]
    assert sorted(services) == sorted(f"{PREFIX}-{name}" for name in (*CONTAINERS, *MONITORING))


def test_every_container_is_healthy(stack: AppliedStack, engine: docker.DockerClient) -> None:
    _assert_all_healthy(engine)


def test_engine_applies_the_medium_profile_limits_restart_policy_and_log_rotation(
    stack: AppliedStack, engine: docker.DockerClient
) -> None:
    for name, (memory_mb, cpus, reservation_mb) in MEDIUM_LIMITS.items():
        host = _inspect(engine, name)["HostConfig"]
        assert host["Memory"] == memory_mb * 1024 * 1024, name
        assert host["MemoryReservation"] == reservation_mb * 1024 * 1024, name
        assert host["NanoCpus"] == int(cpus * 1e9), name
        assert host["RestartPolicy"]["Name"] == "unless-stopped", name
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}, name


def test_no_data_port_is_published_on_the_host(stack: AppliedStack, engine: docker.DockerClient) -> None:
    for name in DATA_SERVICES:
        assert not _inspect(engine, name)["HostConfig"]["PortBindings"], name
        assert not any(_inspect(engine, name)["NetworkSettings"]["Ports"].get(port) for port in DATA_PORTS), name
    for name in SERVERS:
        published = _inspect(engine, name)["NetworkSettings"]["Ports"]
        assert not any(published.get(port) for port in DATA_PORTS), name


def test_server_replicas_are_published_on_loopback_only(stack: AppliedStack, engine: docker.DockerClient) -> None:
    for name, ws_port, http_port in zip(SERVERS, WS_PORTS, HTTP_PORTS, strict=True):
        bindings = _inspect(engine, name)["HostConfig"]["PortBindings"]
        assert bindings == {
            "4399/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(ws_port)}],
            "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(http_port)}],
        }, name


def test_stack_exports_the_replicas_http_urls(stack: AppliedStack) -> None:
    assert stack.outputs["voicegrow_http_urls"] == [f"http://127.0.0.1:{port}" for port in HTTP_PORTS]


def test_each_replica_reaches_mysql_redis_and_minio_with_the_generated_credentials(stack: AppliedStack) -> None:
    for url in stack.outputs["voicegrow_http_urls"]:
        status, detail = _get_json(f"{url}/api/v1/health/detail")
        failures = {check: detail[check]["error"] for check in ("mysql", "redis", "minio") if not detail[check]["ok"]}
        assert (status, detail["status"], failures) == (200, "ok", {}), url
        assert detail["mysql"]["database"] == "voicegrow"
        assert detail["minio"]["bucket"] == BUCKET


def test_redis_refuses_an_unauthenticated_ping(stack: AppliedStack, engine: docker.DockerClient) -> None:
    redis = engine.containers.get(f"{PREFIX}-voicegrow-redis")
    anonymous = run_in(redis, ["redis-cli", "ping"])
    assert "NOAUTH" in anonymous.output, anonymous.output
    authenticated = run_in(redis, ["redis-cli", "--no-auth-warning", "-a", _generated(stack, "redis-password"), "ping"])
    assert authenticated.output.strip() == "PONG", authenticated.output


def test_replicas_see_redis_refuse_a_ping_without_the_password(stack: AppliedStack) -> None:
    for url in stack.outputs["voicegrow_http_urls"]:
        _, detail = _get_json(f"{url}/api/v1/health/detail")
        assert detail["redis"]["unauthenticated_ping_accepted"] is False, url
        assert detail["redis"]["password_set"] is True, url


def test_the_bucket_exists_after_deploy(stack: AppliedStack, engine: docker.DockerClient) -> None:
    code, listing, errors = _mc(stack, engine, "ls", "local")
    assert code == 0, errors
    assert f"{BUCKET}/" in listing.split()


def test_each_replica_answers_with_its_own_instance_name(stack: AppliedStack, engine: docker.DockerClient) -> None:
    names = [_get_json(f"{url}/api/v1/instance")[1]["instance"] for url in stack.outputs["voicegrow_http_urls"]]
    assert names == [_inspect(engine, name)["Config"]["Hostname"] for name in SERVERS]
    assert len(set(names)) == 2


def test_websocket_echo_on_each_replica(stack: AppliedStack) -> None:
    for port in WS_PORTS:
        text = f"hello replica on {port} {uuid.uuid4().hex[:8]}"
        answer = echo("127.0.0.1", port, text)
        assert answer.text == text, port


# Last: it replaces every container (the module's stack continues as the redeployed one).
def test_second_deploy_keeps_the_bucket_and_its_objects(stack: AppliedStack, engine: docker.DockerClient) -> None:
    key = f"kept/{uuid.uuid4().hex}.txt"
    minio = engine.containers.get(f"{PREFIX}-voicegrow-minio")
    written = run_in(minio, ["sh", "-c", f"echo kept > /tmp/object && mc cp /tmp/object local/{BUCKET}/{key}"], environment=_mc_environment(stack))
    assert written.exit_code == 0, written.output
    first_minio = minio.id

    redeployed = stack.reapply()
    record_figure("e2e", "voicegrow.reapply_to_all_healthy", redeployed.seconds_to_ready, "same volumes and state")

    assert _inspect(engine, "voicegrow-minio")["Id"] != first_minio
    _assert_all_healthy(engine)
    code, listing, errors = _mc(stack, engine, "ls", "local")
    assert code == 0 and f"{BUCKET}/" in listing.split(), listing + errors
    assert _mc(stack, engine, "cat", f"local/{BUCKET}/{key}")[:2] == (0, "kept\n")
    for url in redeployed.outputs["voicegrow_http_urls"]:
        status, detail = _get_json(f"{url}/api/v1/health/detail")
        assert (status, detail["minio"]["ok"]) == (200, True), detail
