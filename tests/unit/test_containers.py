"""Every container of every stack gets the shared policies of the one container helper."""

from __future__ import annotations

import pytest

from tests.program import STACKS
from tests.unit.conftest import Evaluate

SECONDS = {"s": 1, "m": 60}
# Images with nothing inside to run a check with; Prometheus scrapes them instead.
UNCHECKED = {"monitoring-redis-exporter"}


def _seconds(duration: str) -> float:
    return float(duration[:-1]) * SECONDS[duration[-1]]


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_has_limits_health_restart_rotation_and_labels(evaluate: Evaluate, stack: str) -> None:
    containers = evaluate(stack).mocks.of_type("docker:index/container:Container")
    assert containers
    for container in containers:
        assert container.value("memory") > 0 and float(container.value("cpus")) > 0, container.name
        assert container.value("restart") == "unless-stopped", container.name
        if container.name not in UNCHECKED:
            assert container.value("healthcheck")["tests"], container.name
        assert container.value("logDriver") == "json-file", container.name
        assert {label["label"] for label in container.value("labels")} == {
            "selfhosted.stack", "selfhosted.component", "selfhosted.role"
        }, container.name


@pytest.mark.parametrize("stack", STACKS)
def test_health_is_checked_often_enough_for_a_prompt_deploy(evaluate: Evaluate, stack: str) -> None:
    # The first check runs one interval after start; the deploy waits for it.
    for container in evaluate(stack).mocks.of_type("docker:index/container:Container"):
        if container.name in UNCHECKED:
            continue
        assert _seconds(container.value("healthcheck")["interval"]) <= 15, container.name
