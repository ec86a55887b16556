"""Every container of every stack gets the shared policies of the one container helper."""

from __future__ import annotations

import pytest

from tests.go_values import go_duration_text, nano_cpus_text, parse_cpus, parse_duration_ns
from tests.program import STACKS
from tests.unit.conftest import Evaluate, Evaluation, Registration
from tests.unit.mocks import Declared

SECONDS = {"s": 1, "m": 60}
CONTAINER = "docker:index/container:Container"


def _services(evaluation: Evaluation) -> list[Declared]:
    """The long-running containers (the deploy waits for each to be healthy)."""
    return [container for container in evaluation.mocks.of_type(CONTAINER) if container.value("wait")]


def _seconds(duration: str) -> float:
    return float(duration[:-1]) * SECONDS[duration[-1]]


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_has_limits_health_restart_rotation_and_labels(evaluate: Evaluate, stack: str) -> None:
    containers = _services(evaluate(stack))
    assert containers
    for container in containers:
        assert container.value("memory") > 0 and container.value("cpuShares") > 0, container.name
        assert container.value("restart") == "unless-stopped", container.name
        assert container.value("healthcheck")["tests"], container.name
        assert container.value("logDriver") == "json-file", container.name
        assert {"selfhosted.stack", "selfhosted.component", "selfhosted.role"} <= {
            label["label"] for label in container.value("labels")
        }, container.name


@pytest.mark.parametrize("stack", STACKS)
def test_health_is_checked_often_enough_for_a_prompt_deploy(evaluate: Evaluate, stack: str) -> None:
    # The first check runs one interval after start; the deploy waits for it.
    for container in _services(evaluate(stack)):
        assert _seconds(container.value("healthcheck")["interval"]) <= 15, container.name


@pytest.mark.parametrize("stack", STACKS)
def test_cpus_and_health_check_durations_are_written_as_the_provider_stores_them(evaluate: Evaluate, stack: str) -> None:
    # Written otherwise, the next `pulumi up` sees a difference: cpus replaces the container.
    for container in _services(evaluate(stack)):
        cpus = container.value("cpus")
        assert cpus is None or nano_cpus_text(parse_cpus(cpus)) == cpus, container.name
        check = container.value("healthcheck") or {}
        for key in set(check) & {"interval", "timeout", "startPeriod"}:
            assert go_duration_text(parse_duration_ns(check[key])) == check[key], (container.name, key)


@pytest.mark.parametrize("stack", STACKS)
def test_swap_allowance_is_stated_so_a_memory_raise_updates_in_place(evaluate: Evaluate, stack: str) -> None:
    for container in _services(evaluate(stack)):
        assert container.value("memorySwap") == 2 * container.value("memory"), container.name


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_is_stopped_before_it_is_removed(evaluate: Evaluate, stack: str) -> None:
    for container in _services(evaluate(stack)):
        assert container.value("destroyGraceSeconds") >= 10, container.name


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("synapse-postgres", 60),
        ("voicegrow-mysql", 120),
        ("voicegrow-redis", 60),
        ("voicegrow-minio", 30),
        ("synapse", 30),
        ("voicegrow-server-1", 30),
        ("voicegrow-server-2", 30),
        ("proxy", 15),
    ],
)
def test_each_service_gets_time_to_shut_down_cleanly(evaluate: Evaluate, name: str, seconds: int) -> None:
    assert evaluate("prod").container(name).value("destroyGraceSeconds") == seconds


@pytest.mark.parametrize("stack", STACKS)
def test_docker_itself_stops_a_container_as_gracefully_as_a_deploy(evaluate: Evaluate, stack: str) -> None:
    # docker stop, docker restart and the engine's own shutdown use the container's stop timeout.
    for container in evaluate(stack).mocks.of_type("docker:index/container:Container"):
        assert container.value("stopTimeout") == container.value("destroyGraceSeconds"), container.name


@pytest.mark.parametrize("stack", STACKS)
def test_a_changed_health_check_replaces_the_container(
    evaluate: Evaluate, registrations: dict[str, Registration], stack: str
) -> None:
    # The provider's update leaves the running container's check as it was.
    containers = _services(evaluate(stack))
    for container in containers:
        assert registrations[container.name].replace_on_changes == ("healthcheck",), container.name


@pytest.mark.parametrize("stack", STACKS)
def test_networks_are_deleted_before_their_replacement_takes_the_name(
    evaluate: Evaluate, registrations: dict[str, Registration], stack: str
) -> None:
    networks = evaluate(stack).mocks.of_type("docker:index/network:Network")
    assert networks
    for network in networks:
        assert registrations[network.name].delete_before_replace, network.name
