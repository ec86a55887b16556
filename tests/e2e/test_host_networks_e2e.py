"""Why the isolation checks hold tests/e2e/host_networks.py's lock, measured on the real engine.

A client on one network tries a server on another, isolated one, many times, while networks are
created and removed: without the lock some attempts get through (Docker's holes), with it none do.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from tests.e2e.host_networks import changing_networks, networks_steady
from tests.e2e.stacks import PROBE_IMAGE, record_figure

pytestmark = pytest.mark.e2e

PREFIX = "e2e-hostnet"
SERVER_PORT = 8080
ATTEMPTS = 200
# From the client: how many of ATTEMPTS connections to the server got through.
TRY = """
import json, socket, sys
host, attempts = sys.argv[1], int(sys.argv[2])
connected = 0
for _ in range(attempts):
    client = socket.socket()
    client.settimeout(0.05)
    try:
        client.connect((host, %d))
        connected += 1
    except OSError:
        pass
    finally:
        client.close()
print(json.dumps(connected))
""" % SERVER_PORT


@dataclass(frozen=True)
class Apart:
    client: Any
    server_address: str


@pytest.fixture(scope="module")
def apart(engine: docker.DockerClient) -> Iterator[Apart]:
    """A server on one network and a client on another."""
    suffix = uuid.uuid4().hex[:6]
    with changing_networks():
        networks = [engine.networks.create(f"{PREFIX}-{side}-{suffix}", labels={"e2e.module": PREFIX}) for side in ("a", "b")]
    containers: list[Any] = []
    try:
        server = engine.containers.run(
            PROBE_IMAGE, ["python3", "-m", "http.server", str(SERVER_PORT)], entrypoint=[], detach=True,
            network=networks[1].name, name=f"{PREFIX}-server-{suffix}",
        )
        containers.append(server)
        client = engine.containers.run(
            PROBE_IMAGE, ["sleep", "infinity"], entrypoint=[], detach=True, network=networks[0].name, name=f"{PREFIX}-client-{suffix}"
        )
        containers.append(client)
        server.reload()
        yield Apart(client, server.attrs["NetworkSettings"]["Networks"][networks[1].name]["IPAddress"])
    finally:
        for container in containers:
            container.remove(force=True)
        with changing_networks():
            for network in networks:
                network.remove()


def _tries(apart: Apart) -> int:
    result = apart.client.exec_run(["python3", "-c", TRY, apart.server_address, str(ATTEMPTS)])
    assert result.exit_code == 0, result.output
    return int(json.loads(result.output.decode().strip().splitlines()[-1]))


def _churn(engine: docker.DockerClient, stop: threading.Event, locked: bool) -> None:
    """Create and remove networks until `stop`, each change under the lock when `locked`."""
    index = 0
    while not stop.is_set():
        index += 1
        name = f"{PREFIX}-churn-{uuid.uuid4().hex[:6]}"
        if locked:
            with changing_networks():
                engine.networks.create(name).remove()
        else:
            engine.networks.create(name).remove()


def test_creating_networks_opens_holes_in_the_isolation_of_others(engine: docker.DockerClient, apart: Apart) -> None:
    # Held throughout: the holes this test opens must not reach another test's isolation check.
    with networks_steady():
        stop = threading.Event()
        churn = threading.Thread(target=_churn, args=(engine, stop, False))
        churn.start()
        try:
            through = _tries(apart)
        finally:
            stop.set()
            churn.join()
    record_figure("e2e", "host_networks.through_while_networks_change", float(through), f"of {ATTEMPTS} attempts")
    assert through > 0, "no hole in Docker's isolation while networks changed: the engine no longer needs host_networks' lock"


def test_under_the_lock_no_connection_gets_through(engine: docker.DockerClient, apart: Apart) -> None:
    stop = threading.Event()
    churn = threading.Thread(target=_churn, args=(engine, stop, True))
    churn.start()
    try:
        with networks_steady():
            through = _tries(apart)
    finally:
        stop.set()
        churn.join()
    assert through == 0, f"{through} of {ATTEMPTS} connections crossed networks while the lock was held"
