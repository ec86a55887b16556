"""The healer under mocks: every stack has one, it and (with full monitoring) Alloy alone hold the
Docker socket, and it has no network."""

from __future__ import annotations

import pytest

from tests.program import STACKS
from tests.unit.conftest import Evaluate, Registration

CONTAINER = "docker:index/container:Container"
SOCKET = "/var/run/docker.sock"


def _env(evaluate: Evaluate, stack: str, overrides: dict | None = None) -> dict[str, str]:
    healer = evaluate(stack, overrides=overrides).container("healer")
    return dict(entry.split("=", 1) for entry in healer.value("envs"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_has_a_healer(evaluate: Evaluate, stack: str) -> None:
    assert evaluate(stack).container("healer").value("command") == ["healer", "run"]


def test_the_healer_can_be_turned_off(evaluate: Evaluate) -> None:
    containers = evaluate("prod", overrides={"healer": {"enabled": False}}).mocks.of_type(CONTAINER)
    assert "healer" not in {container.name for container in containers}


# Full monitoring (staging, prod) runs the engine API filter, through which Alloy and cAdvisor read.
@pytest.mark.parametrize(
    ("stack", "holders"),
    [
        ("dev", ["healer"]),
        ("test", ["healer"]),
        ("staging", ["healer", "monitoring-engine-api"]),
        ("prod", ["healer", "monitoring-engine-api"]),
    ],
)
def test_only_the_healer_and_the_engine_api_filter_hold_the_docker_socket(evaluate: Evaluate, stack: str, holders: list[str]) -> None:
    assert sorted(
        container.name
        for container in evaluate(stack).mocks.of_type(CONTAINER)
        if any(volume.get("hostPath") == SOCKET for volume in container.value("volumes") or [])
    ) == holders


def test_the_healer_holds_the_socket_the_stack_names(evaluate: Evaluate) -> None:
    healer = evaluate("prod", overrides={"healer": {"docker_socket": "/run/user/1000/docker.sock"}}).container("healer")
    assert {"hostPath": "/run/user/1000/docker.sock", "containerPath": SOCKET} in healer.value("volumes")


def test_the_healer_has_no_network_at_all(evaluate: Evaluate) -> None:
    healer = evaluate("prod").container("healer")
    assert healer.value("networkMode") == "none"
    assert not healer.value("networksAdvanced")


def test_the_healer_root_filesystem_is_read_only(evaluate: Evaluate) -> None:
    assert evaluate("prod").container("healer").value("readOnly") is True


def test_the_healer_restarts_only_this_stack_s_containers(evaluate: Evaluate) -> None:
    env = _env(evaluate, "prod")
    assert env["HEALER_LABEL"] == "selfhosted.stack=prod"
    assert env["HEALER_PREFIX"] == "selfhosted-prod"


def test_the_healer_leaves_the_backup_job_and_itself_alone(evaluate: Evaluate) -> None:
    # The backup job is unhealthy when backups are stale, the healer when it gave up on a
    # container: a restart would hide either.
    assert _env(evaluate, "prod")["HEALER_EXCLUDE"] == "selfhosted-prod-backup,selfhosted-prod-healer"


def test_the_healer_looks_as_often_as_set(evaluate: Evaluate) -> None:
    assert _env(evaluate, "prod")["HEALER_INTERVAL"] == "10"
    assert _env(evaluate, "prod", {"healer": {"interval_seconds": 30}})["HEALER_INTERVAL"] == "30"


@pytest.mark.parametrize("stack", STACKS)
def test_the_healer_depends_on_every_other_container_so_a_destroy_removes_it_first(
    evaluate: Evaluate, registrations: dict[str, Registration], stack: str
) -> None:
    # A restart racing a removal leaves an endpoint behind, and the network cannot be removed.
    containers = {container.name for container in evaluate(stack).mocks.of_type(CONTAINER)}
    assert containers - {"healer"} <= registrations["healer"].dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_the_healer_writes_its_metrics_where_node_exporter_reads_them(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    healer, node = evaluation.container("healer"), evaluation.container("monitoring-node-exporter")
    written = {volume["volumeName"]: volume["containerPath"] for volume in healer.value("volumes") if "volumeName" in volume}
    read = {volume["volumeName"]: volume for volume in node.value("volumes") if "volumeName" in volume}
    assert list(written) == list(read) == [f"selfhosted-{stack}-monitoring-healer-metrics"]
    volume = next(iter(read.values()))
    assert volume.get("readOnly") is True
    assert f"--collector.textfile.directory={volume['containerPath']}" in node.value("command")
    assert _env(evaluate, stack)["HEALER_METRICS_FILE"] == f"{next(iter(written.values()))}/healer.prom"


def test_without_the_healer_node_exporter_reads_no_textfile(evaluate: Evaluate) -> None:
    node = evaluate("prod", overrides={"healer": {"enabled": False}}).container("monitoring-node-exporter")
    assert not any(argument.startswith("--collector.textfile") for argument in node.value("command"))
