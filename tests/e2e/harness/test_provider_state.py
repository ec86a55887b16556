"""The harness records what the real provider records, and diffs the next up as the provider does.

Expected strings come from the provider's Go functions (nanoInt64ToDecimalString, Go's
time.Duration.String) evaluated by hand for each input.
"""

from __future__ import annotations

from typing import Any

import pytest

from .planning import Options, diff
from tests.go_values import go_duration_text, nano_cpus_text

from .provider_state import container_state

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
URN = "urn:pulumi:e2e::p::docker:index/container:Container::web"


@pytest.mark.parametrize(
    ("nano_cpus", "text"),
    [
        (1_000_000_000, "1.0"),
        (2_000_000_000, "2.0"),
        (600_000_000, "0.6"),
        (250_000_000, "0.25"),
        (50_000_000, "0.1"),
        (10_000_000, "0.0"),
        (1_500_000_000, "1.5"),
        (10_000_000_000, "10."),
        (12_000_000_000, "12.0"),
        (150_000_000, "0.15"),
    ],
)
def test_cpus_are_stored_as_the_provider_formats_nano_cpus(nano_cpus: int, text: str) -> None:
    assert nano_cpus_text(nano_cpus) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (5, "5s"), (60, "1m0s"), (90, "1m30s"), (120, "2m0s"), (3600, "1h0m0s"), (3661, "1h1m1s"), (0.5, "500ms"), (1.5, "1.5s")],
)
def test_durations_are_stored_as_go_prints_them(seconds: float, text: str) -> None:
    assert go_duration_text(int(seconds * 1_000_000_000)) == text


def inspect(**host: Any) -> dict[str, Any]:
    return {
        "Name": "/web",
        "Image": "sha256:abc",
        "Config": {
            "Image": "nginx:1.27",
            "Cmd": ["nginx", "-g", "daemon off;"],
            "Labels": {"from.the.image": "yes", "app": "web"},
            "Env": ["PATH=/usr/bin", "MODE=prod"],
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 60_000_000_000, "Timeout": 5_000_000_000, "Retries": 3},
        },
        "HostConfig": {
            "NetworkMode": "bridge",
            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
            "Memory": 256 * 1024 * 1024,
            "MemorySwap": 512 * 1024 * 1024,
            "NanoCpus": 1_000_000_000,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "compress": "true"}},
            **host,
        },
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "443/tcp": None}},
        "State": {"Running": True},
    }


DECLARED: dict[str, Any] = {
    "name": "web",
    "image": "nginx:1.27",
    "envs": ["MODE=prod"],
    "labels": [{"label": "app", "value": "web"}],
    "restart": "unless-stopped",
    "memory": 256,
    "memorySwap": 512,
    "cpus": "1.0",
    "healthcheck": {"tests": ["CMD", "true"], "interval": "1m0s", "timeout": "5s", "retries": 3},
    "logDriver": "json-file",
    "logOpts": {"max-size": "10m", "compress": "true"},
    "ports": [{"internal": 80, "external": 8080, "ip": "127.0.0.1"}],
    "networksAdvanced": [{"name": "backend", "aliases": ["web"]}],
    "wait": True,
}


def planned(stored_inputs: dict[str, Any], declared: dict[str, Any], options: Options = Options()) -> dict[str, str]:
    change = diff(URN, CONTAINER, "web", container_state(stored_inputs, inspect()), declared, options)
    return {} if change is None else {prop.name: change.action for prop in change.properties}


def test_a_program_in_the_providers_formats_changes_nothing() -> None:
    assert planned(DECLARED, DECLARED) == {}


def test_labels_and_envs_docker_adds_from_the_image_are_not_read_back() -> None:
    state = container_state(DECLARED, inspect())
    assert state["labels"] == DECLARED["labels"] and state["envs"] == DECLARED["envs"]


@pytest.mark.parametrize(
    ("key", "written", "action"),
    [
        ("cpus", "1", "replace"),
        ("healthcheck", {**DECLARED["healthcheck"], "interval": "60s"}, "update"),
        ("memorySwap", None, "update"),
        ("logOpts", {"max-size": "10m"}, "replace"),
        ("ports", [{"internal": 80, "external": 8080}], "replace"),
    ],
    ids=["cpus-1", "healthcheck-60s", "swap-unset", "daemon-log-opts", "port-without-ip"],
)
def test_a_value_the_provider_stores_differently_changes_the_container(key: str, written: Any, action: str) -> None:
    declared = {**DECLARED, key: written}
    assert planned(declared, declared) == {key: action}


def test_replace_on_changes_turns_a_health_check_update_into_a_replacement() -> None:
    declared = {**DECLARED, "healthcheck": {**DECLARED["healthcheck"], "retries": 5}}
    assert planned(DECLARED, declared, Options(replace_on_changes=("healthcheck",))) == {"healthcheck": "replace"}


def test_memory_alone_updates_in_place() -> None:
    assert planned(DECLARED, {**DECLARED, "memory": 1024, "memorySwap": 2048}) == {"memory": "update", "memorySwap": "update"}


def test_a_cpu_weight_is_read_back_as_given_and_a_change_updates_in_place() -> None:
    weighted = {**DECLARED, "cpuShares": 2048}
    stored = container_state(weighted, inspect(CpuShares=2048))
    assert stored["cpuShares"] == 2048
    change = diff(URN, CONTAINER, "web", stored, {**weighted, "cpuShares": 1024}, Options())
    assert change is not None and {prop.name: change.action for prop in change.properties} == {"cpuShares": "update"}


def test_removing_a_cpu_cap_replaces_the_container() -> None:
    uncapped = {key: value for key, value in DECLARED.items() if key != "cpus"}
    assert planned(DECLARED, uncapped) == {"cpus": "replace"}


def test_ports_compare_regardless_of_order() -> None:
    two = [{"internal": 443, "external": 8443, "ip": "127.0.0.1"}, {"internal": 80, "external": 8080, "ip": "127.0.0.1"}]
    state_inspect = inspect()
    state_inspect["NetworkSettings"]["Ports"]["443/tcp"] = [{"HostIp": "127.0.0.1", "HostPort": "8443"}]
    stored = container_state({**DECLARED, "ports": two}, state_inspect)
    assert diff(URN, CONTAINER, "web", stored, {**DECLARED, "ports": two}, Options()) is None


def test_an_input_without_a_diff_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="gpuCount"):
        planned(DECLARED, {**DECLARED, "gpuCount": 1})


def test_every_gpu_reads_back_as_all_and_a_change_replaces() -> None:
    state_inspect = inspect()
    state_inspect["HostConfig"]["DeviceRequests"] = [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]]}]
    stored = container_state({**DECLARED, "gpus": "all"}, state_inspect)
    assert stored["gpus"] == "all"
    assert diff(URN, CONTAINER, "web", stored, {**DECLARED, "gpus": "all"}, Options()) is None
    assert "gpus" not in container_state(DECLARED, inspect())
    assert planned(DECLARED, {**DECLARED, "gpus": "all"}) == {"gpus": "replace"}
    # A container that lost its device requests reads back none: the next up replaces it.
    assert container_state({**DECLARED, "gpus": "all"}, inspect())["gpus"] == ""


def test_network_labels_are_read_back_and_every_change_replaces() -> None:
    stored = {"name": "net", "driver": "bridge", "labels": [{"label": "a", "value": "1"}], "ipamDriver": "default"}
    change = diff(URN, NETWORK, "net", stored, {"name": "net", "driver": "bridge", "labels": [{"label": "a", "value": "2"}]}, Options())
    assert change is not None and change.action == "replace"


CONFINED = {
    **DECLARED,
    "capabilities": {"drops": ["ALL"], "adds": ["CHOWN"]},
    "ulimits": [{"name": "nofile", "soft": 16384, "hard": 16384}],
    "securityOpts": ["no-new-privileges"],
}
CONFINED_HOST = {
    "CapAdd": ["CHOWN"],
    "CapDrop": ["ALL"],
    "Ulimits": [{"Name": "nofile", "Soft": 16384, "Hard": 16384}],
    "SecurityOpt": ["no-new-privileges"],
}


def test_capabilities_and_ulimits_are_read_back_as_docker_stores_them() -> None:
    state = container_state(CONFINED, inspect(**CONFINED_HOST))
    assert state["capabilities"] == {"adds": ["CHOWN"], "drops": ["ALL"]}
    assert state["ulimits"] == [{"name": "nofile", "soft": 16384, "hard": 16384}]


def test_a_confined_container_as_docker_reports_it_changes_nothing() -> None:
    stored = container_state(CONFINED, inspect(**CONFINED_HOST))
    assert diff(URN, CONTAINER, "web", stored, CONFINED, Options()) is None


def test_a_capability_docker_does_not_report_replaces_the_container() -> None:
    stored = container_state(CONFINED, inspect(**{**CONFINED_HOST, "CapAdd": None}))
    change = diff(URN, CONTAINER, "web", stored, CONFINED, Options())
    assert change is not None and change.action == "replace"


def test_ulimits_written_as_wire_floats_change_nothing() -> None:
    stored = container_state(CONFINED, inspect(**CONFINED_HOST))
    declared = {**CONFINED, "ulimits": [{"name": "nofile", "soft": 16384.0, "hard": 16384.0}]}
    assert diff(URN, CONTAINER, "web", stored, declared, Options()) is None
