"""SynapseStack applied to a real Docker engine, used as a Matrix client would use it."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import AppliedStack, ApplyError, apply_program
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.matrix_client import converse, read_messages
from tests.e2e.stacks import (
    ROOT,
    assert_second_up_changes_nothing,
    deployed_stack,
    host_ports,
    local_overrides,
    record_figure,
    wait_restarted_and_healthy,
)

pytestmark = pytest.mark.e2e
PREFIX = "e2e-synapse"
PORT = host_ports(18008)
BASE_URL = f"http://127.0.0.1:{PORT}"
CONTAINERS = ("synapse-postgres", "synapse", "synapse-wellknown")
OVERRIDES = local_overrides(PREFIX, PORT, {"proxy": {"enabled": False}})


@pytest.fixture(scope="module")
def stack() -> Iterator[AppliedStack]:
    with deployed_stack("dev", OVERRIDES, "synapse") as applied:
        yield applied


def _inspect(engine: docker.DockerClient, name: str) -> dict:
    return engine.api.inspect_container(f"{PREFIX}-{name}")


def _get(path: str, port: int = PORT) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def _signing_key_ids() -> list[str]:
    _, _, body = _get("/_matrix/key/v2/server")
    return sorted(json.loads(body)["verify_keys"])


def test_all_containers_are_healthy(stack: AppliedStack, engine: docker.DockerClient) -> None:
    for name in CONTAINERS:
        assert _inspect(engine, name)["State"]["Health"]["Status"] == "healthy", name


def test_second_up_of_the_unchanged_dev_program_changes_nothing(stack: AppliedStack) -> None:
    assert_second_up_changes_nothing(stack, "synapse")


def test_engine_applies_the_profile_limits_restart_policy_and_log_rotation(stack: AppliedStack, engine: docker.DockerClient) -> None:
    expected = {"synapse-postgres": (384, 1024), "synapse": (1280, 2048), "synapse-wellknown": (32, 256)}
    for name, (memory_mb, cpu_weight) in expected.items():
        host = _inspect(engine, name)["HostConfig"]
        assert host["Memory"] == memory_mb * 1024 * 1024, name
        # Weighed against each other, none capped: what one leaves idle, another may use.
        assert (host["CpuShares"], host["NanoCpus"]) == (cpu_weight, 0), name
        assert host["RestartPolicy"]["Name"] == "unless-stopped", name
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}, name


def test_postgres_publishes_no_port(stack: AppliedStack, engine: docker.DockerClient) -> None:
    assert not _inspect(engine, "synapse-postgres")["HostConfig"]["PortBindings"]


def test_synapse_serves_client_versions(stack: AppliedStack) -> None:
    status, _, body = _get("/_matrix/client/versions")
    assert status == 200 and "v1.1" in json.loads(body)["versions"]


def test_wellknown_returns_the_configured_json(stack: AppliedStack) -> None:
    status, headers, body = _get("/.well-known/matrix/server", PORT + 1)
    assert (status, json.loads(body)) == (200, {"m.server": "matrix.localhost:443"})
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    _, _, client = _get("/.well-known/matrix/client", PORT + 1)
    assert json.loads(client) == {"m.homeserver": {"base_url": "http://127.0.0.1:8008"}}


def test_postgres_database_has_c_collation_and_ctype(stack: AppliedStack, engine: docker.DockerClient) -> None:
    result = run_in(
        engine.containers.get(f"{PREFIX}-synapse-postgres"), ["psql", "-U", "synapse", "-d", "synapse", "-tAc", "SELECT datcollate, datctype FROM pg_database WHERE datname = 'synapse'"]
    )
    assert result.output.strip() == "C|C"


def test_postgres_runs_with_the_profile_tuning(stack: AppliedStack, engine: docker.DockerClient) -> None:
    result = run_in(engine.containers.get(f"{PREFIX}-synapse-postgres"), ["psql", "-U", "synapse", "-d", "synapse", "-tAc", "SHOW shared_buffers"])
    assert result.output.strip() == "96MB"


def test_admin_account_was_created_on_deploy(stack: AppliedStack) -> None:
    password = stack.outputs["synapse_admin_password"]
    request = urllib.request.Request(
        f"{BASE_URL}/_matrix/client/v3/login",
        data=json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "admin"}, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["user_id"] == "@admin:matrix.localhost"


def test_two_users_exchange_a_message_and_it_survives_a_killed_synapse(stack: AppliedStack, engine: docker.DockerClient) -> None:
    conversation = converse(BASE_URL)
    # SIGKILL to Synapse's process, as a crash or the OOM killer would: `docker kill` counts as a
    # manual stop, which the restart policy rightly leaves alone.
    before = _inspect(engine, "synapse")
    os.kill(before["State"]["Pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    wait_restarted_and_healthy(engine, f"{PREFIX}-synapse", before, timeout=180)
    record_figure("e2e", "synapse.killed_to_healthy", time.monotonic() - killed_at)
    assert conversation.text in read_messages(BASE_URL, conversation.reader, conversation.password, conversation.room_id)


def test_signing_key_lives_on_the_data_volume(stack: AppliedStack, engine: docker.DockerClient) -> None:
    result = run_in(engine.containers.get(f"{PREFIX}-synapse"), ["cat", "/data/signing.key"])
    assert result.exit_code == 0 and result.output.startswith("ed25519 ")


def test_signing_key_survives_replacing_the_containers(stack: AppliedStack, engine: docker.DockerClient) -> None:
    key_ids = _signing_key_ids()
    container_id = _inspect(engine, "synapse")["Id"]
    stack.reapply()  # new containers on the same volumes, as after an image upgrade
    assert _inspect(engine, "synapse")["Id"] != container_id
    assert _signing_key_ids() == key_ids


def test_a_wrong_database_password_fails_the_apply() -> None:
    require_engine()
    broken = local_overrides(
        "e2e-broken",
        18108,
        {
            "proxy": {"enabled": False},
            "synapse": {"admin_username": None, "extra_config": {"database": {"args": {"password": "not-the-password"}}}},
        },
    )
    # Synapse cannot reach its database: the apply fails naming the container and Postgres's refusal.
    with pytest.raises(ApplyError, match=r"(?s)container 'e2e-broken-synapse'.*password authentication failed for user \"synapse\""):
        apply_program(ROOT, "dev", broken).destroy()

