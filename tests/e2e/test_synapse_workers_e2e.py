"""Synapse with workers (the medium profile) behind the proxy on a real Docker engine, used as clients use it.

Redis, the main process and seven workers run; Matrix users register, create a room, send and
receive through the proxy; the requests land on the workers that serve them; a killed /sync
worker comes back and the users keep syncing; turned off, the workers go and the messages stay.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import docker
import pytest

from config.merge import deep_merge
from config.profiles import MEDIUM, synapse_workers
from tests.e2e.harness import AppliedStack
from tests.e2e.hostnames import resolve_to_loopback
from tests.e2e.matrix_client import converse, read_messages
from tests.e2e.stacks import (
    assert_second_up_changes_nothing,
    deployed_stack,
    host_ports,
    local_overrides,
    record_figure,
    wait_restarted_and_healthy,
)

pytestmark = pytest.mark.e2e
PREFIX = "e2e-workers"
PORT = host_ports(19300)
HTTP_PORT = PORT + 6
DOMAIN = "e2e-workers.test"
MATRIX_HOST = f"matrix.{DOMAIN}"
BASE_URL = f"http://{MATRIX_HOST}:{HTTP_PORT}"
WORKERS = [f"synapse-{worker.name.replace('_', '-')}" for worker in synapse_workers(MEDIUM.synapse_workers)]
CONTAINERS = ("synapse-postgres", "synapse-redis", "synapse", "synapse-wellknown", *WORKERS, "proxy")
OVERRIDES = local_overrides(
    PREFIX,
    PORT,
    {
        "profile": "medium",
        # Plain HTTP: this stack is about the workers; the proxy's TLS has its own tests.
        "tls": "off",
        # Off by default on medium (two cores); turned on here.
        "synapse": {"server_name": DOMAIN, "public_host": MATRIX_HOST, "workers": True},
        "voicegrow": {"enabled": False},
        "backup": {"enabled": False},
    },
)


@pytest.fixture(scope="module")
def deployed() -> Iterator[AppliedStack]:
    with deployed_stack("test", OVERRIDES, "synapse_workers", "medium profile: Redis, main process and 7 workers") as applied:
        with resolve_to_loopback(DOMAIN):
            yield applied


def _inspect(engine: docker.DockerClient, name: str) -> dict:
    return engine.api.inspect_container(f"{PREFIX}-{name}")


def _logs(engine: docker.DockerClient, name: str) -> str:
    return engine.containers.get(f"{PREFIX}-{name}").logs().decode(errors="replace")


def test_redis_the_main_process_and_every_worker_are_healthy(deployed: AppliedStack, engine: docker.DockerClient) -> None:
    for name in CONTAINERS:
        assert _inspect(engine, name)["State"]["Health"]["Status"] == "healthy", name


def test_neither_redis_nor_a_worker_is_published_on_the_host(deployed: AppliedStack, engine: docker.DockerClient) -> None:
    for name in ("synapse-redis", *WORKERS):
        assert not _inspect(engine, name)["HostConfig"]["PortBindings"], name


def test_second_up_of_the_unchanged_worker_stack_changes_nothing(deployed: AppliedStack) -> None:
    assert_second_up_changes_nothing(deployed, "synapse_workers")


def test_users_converse_through_the_proxy_and_the_workers_serve_them(deployed: AppliedStack, engine: docker.DockerClient) -> None:
    conversation = converse(BASE_URL, registration_token=deployed.outputs["synapse_registration_token"])
    assert conversation.sender.endswith(f":{DOMAIN}")
    # Synapse logs each request it processed: registration, the room and the message went to the
    # client reader, the reader's /sync to a sync worker.
    reader = _logs(engine, "synapse-client-reader1")
    assert "/register" in reader and "/createRoom" in reader and "/send/m.room.message" in reader
    assert any("/sync" in _logs(engine, name) for name in ("synapse-sync1", "synapse-sync2"))
    assert "/sync" not in _logs(engine, "synapse")


def test_a_killed_sync_worker_comes_back_and_users_keep_syncing(deployed: AppliedStack, engine: docker.DockerClient) -> None:
    token = deployed.outputs["synapse_registration_token"]
    before = _inspect(engine, "synapse-sync1")
    # SIGKILL to the worker's process, as a crash or the OOM killer would: the restart policy brings it back.
    os.kill(before["State"]["Pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    # Meanwhile the proxy sends /sync to the other sync worker.
    during = converse(BASE_URL, registration_token=token)
    wait_restarted_and_healthy(engine, f"{PREFIX}-synapse-sync1", before, timeout=180)
    record_figure("e2e", "synapse_workers.sync_worker_killed_to_healthy", time.monotonic() - killed_at)
    after = converse(BASE_URL, registration_token=token)
    assert during.text in read_messages(BASE_URL, during.reader, during.password, during.room_id)
    assert after.text in read_messages(BASE_URL, after.reader, after.password, after.room_id)


def test_turning_workers_off_keeps_the_messages_and_leaves_one_process(deployed: AppliedStack, engine: docker.DockerClient) -> None:
    conversation = converse(BASE_URL, registration_token=deployed.outputs["synapse_registration_token"])
    single = deployed.update(deep_merge(OVERRIDES, {"synapse": {"workers": False}}))
    services = {name.removeprefix(f"{PREFIX}-") for name in single.containers if not name.endswith("-files")}
    assert not services & {"synapse-redis", *WORKERS}
    assert conversation.text in read_messages(BASE_URL, conversation.reader, conversation.password, conversation.room_id)
    # The single process now serves everything, /sync included.
    converse(BASE_URL, registration_token=single.outputs["synapse_registration_token"])
    assert "/sync" in _logs(engine, "synapse")
