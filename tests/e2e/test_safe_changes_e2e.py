"""Day two on a real engine: a hung service heals itself.

Ports 18600-18699.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from tests.e2e.harness import AppliedStack
from tests.e2e.stacks import deployed_stack, local_overrides, record_figure

pytestmark = pytest.mark.e2e

PORT = 18600
HEAL_PREFIX = "e2e-heal"


@pytest.fixture(scope="module")
def synapse_only() -> Iterator[AppliedStack]:
    with deployed_stack("dev", local_overrides(HEAL_PREFIX, PORT, {"proxy": {"enabled": False}}), "safe.heal") as applied:
        yield applied


def _state(engine: docker.DockerClient, name: str) -> dict:
    return engine.api.inspect_container(name)["State"]


def _wait_started_again_and_healthy(engine: docker.DockerClient, name: str, started_at: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(engine, name)
        if state["Running"] and state["StartedAt"] != started_at and state["Health"]["Status"] == "healthy":
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} was not restarted and healthy again within {timeout} s: {state}")


def test_a_frozen_synapse_is_restarted_and_healthy_again(synapse_only: AppliedStack, engine: docker.DockerClient) -> None:
    name = f"{HEAL_PREFIX}-synapse"
    started_at = _state(engine, name)["StartedAt"]
    # A hung process: it neither answers nor exits, so Docker's restart policy never acts.
    engine.api.kill(name, signal="SIGSTOP")
    frozen = time.monotonic()
    _wait_started_again_and_healthy(engine, name, started_at, timeout=240)
    record_figure("e2e", "safe.heal.frozen_synapse_to_healthy", time.monotonic() - frozen)
    healer_log = engine.api.logs(f"{HEAL_PREFIX}-healer").decode()
    assert f"{name} is unhealthy: restarting it" in healer_log
