"""The engine API filter against a real engine: the container full monitoring declares (its user,
capabilities, read-only root and command, the nginx stand-in for its image) runs in front of this
test engine's socket, and a client on its network asks what Alloy and cAdvisor ask, and what an
attacker on that network would."""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from components.rendering import engine_api
from tests.e2e.container_exec import run_in
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.host_networks import changing_networks
from tests.e2e.stacks import LOCAL_IMAGES, PROBE_IMAGE
from tests.program import run_program
from tests.unit.mocks import RecordingMocks

pytestmark = pytest.mark.e2e

PREFIX = "e2e-engine-api"
# From the client: the status and the body of one request to the filter.
REQUEST = """
import http.client, sys
connection = http.client.HTTPConnection("engine-api", 2375, timeout=20)
connection.request(sys.argv[1], sys.argv[2], body=sys.argv[3] if len(sys.argv) > 3 else None, headers={"Content-Type": "application/json"})
response = connection.getresponse()
print(response.status, response.read().decode(errors="replace"))
"""


def _declared() -> Any:
    """The filter's container as the program declares it for a stack with full monitoring."""
    mocks = RecordingMocks()
    run_program(mocks, "test", preview=False, overrides={"monitoring": {"level": "full"}})
    return mocks.named("monitoring-engine-api", "docker:index/container:Container")


def _engine_socket() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")


@pytest.fixture(scope="module")
def client(engine: docker.DockerClient) -> Iterator[tuple[Any, Any]]:
    """A container on the filter's network, with the filter running as declared, and another
    container for the requests to name."""
    require_engine()
    declared = _declared()
    with changing_networks():
        network = engine.networks.create(f"{PREFIX}-{uuid.uuid4().hex[:6]}")
    config = engine.volumes.create(f"{PREFIX}-config-{uuid.uuid4().hex[:6]}")
    started: list[Any] = []
    try:
        # The configuration volume, as the program's preparation writes it: 0400 for the service's user.
        writer = engine.containers.create(PROBE_IMAGE, ["true"], volumes={config.name: {"bind": engine_api.CONFIG_DIR}})
        started.append(writer)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            data = engine_api.render_engine_api_conf().encode()
            info = tarfile.TarInfo(engine_api.CONFIG_NAME)
            info.size, info.mode = len(data), 0o400
            tar.addfile(info, io.BytesIO(data))
        writer.put_archive(engine_api.CONFIG_DIR, archive.getvalue())
        capabilities = declared.value("capabilities")
        api = engine.containers.run(
            LOCAL_IMAGES["engine_api"],
            declared.value("command"),
            detach=True,
            user=declared.value("user"),
            cap_drop=capabilities["drops"],
            cap_add=capabilities.get("adds"),
            read_only=declared.value("readOnly"),
            tmpfs=declared.value("tmpfs"),
            volumes={
                _engine_socket(): {"bind": engine_api.SOCKET, "mode": "rw"},
                config.name: {"bind": engine_api.CONFIG_DIR, "mode": "ro"},
            },
            network=network.name,
        )
        started.append(api)
        network.disconnect(api)
        network.connect(api, aliases=[engine_api.ALIAS])
        reader = engine.containers.run(PROBE_IMAGE, ["sleep", "infinity"], detach=True, network=network.name)
        started.append(reader)
        # What the requests name: a container no test runs anything in.
        target = engine.containers.run(PROBE_IMAGE, ["sleep", "infinity"], detach=True, network="none")
        started.append(target)
        yield reader, target
    finally:
        for container in started:
            container.remove(force=True)
        with changing_networks():
            network.remove()
        config.remove(force=True)


def _ask(client: Any, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    result = run_in(client, ["python3", "-c", REQUEST, method, path, *([body] if body else [])], apart=True)
    assert result.exit_code == 0, result.output
    status, _, text = result.stdout.strip().partition(" ")
    return int(status), text


def test_alloy_and_cadvisor_read_the_engine_through_it(engine: docker.DockerClient, client: tuple[Any, Any]) -> None:
    reader, target = client
    assert _ask(reader, "GET", "/_ping") == (200, "OK")
    version = json.loads(_ask(reader, "GET", "/version")[1])
    assert version["ApiVersion"] == engine.version()["ApiVersion"]
    status, listing = _ask(reader, "GET", f"/v1.41/containers/json?filters={urllib.parse.quote(json.dumps({'id': [target.id]}))}")
    assert status == 200 and json.loads(listing)[0]["Id"] == target.id
    status, inspected = _ask(reader, "GET", f"/containers/{target.id}/json")
    assert status == 200 and json.loads(inspected)["Id"] == target.id
    assert _ask(reader, "GET", f"/containers/{target.id}/logs?stdout=1&stderr=1")[0] == 200


MARKER = f"{PREFIX}.marker"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/containers/create", json.dumps({"Image": PROBE_IMAGE, "Labels": {MARKER: "created"}, "HostConfig": {"Privileged": True, "Binds": ["/:/host"]}})),
        ("POST", "/containers/{id}/exec", json.dumps({"Cmd": ["id"]})),
        ("POST", "/containers/{id}/stop", None),
        ("GET", "/containers/{id}/archive?path=/etc", None),
        ("GET", "/containers/{id}/export", None),
        ("GET", "/images/json", None),
        ("GET", "/volumes", None),
    ],
)
def test_nothing_that_starts_changes_enters_or_copies_out_of_a_container_passes(
    engine: docker.DockerClient, client: tuple[Any, Any], method: str, path: str, body: str | None
) -> None:
    reader, target = client
    status, text = _ask(reader, method, path.format(id=target.id), body)
    assert status == 403 and "refused by the engine API filter" in text, (status, text)
    # Nothing reached the engine: no container was made, none was entered or stopped.
    assert not engine.containers.list(all=True, filters={"label": MARKER})
    inspected = engine.api.inspect_container(target.id)
    assert inspected["State"]["Running"] and not inspected["ExecIDs"]
