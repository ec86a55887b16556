"""Swarm resources: inputs to Engine API specs, the provider's read-back, and the second up's diff."""

from __future__ import annotations

from typing import Any

import pytest

from .docker_mapping import map_secret, map_service, map_service_config
from .engine import ServiceDidNotConverge, running_replicas, update_progress
from .planning import Options, diff
from tests.go_values import short_duration_text

from .provider_state import config_state, service_state
from .swarm import swarm_settings
from .values import UnsupportedInput

SERVICE = "docker:index/service:Service"
URN = "urn:pulumi:e2e::p::docker:index/service:Service::web"


def inputs(**container: Any) -> dict[str, Any]:
    return {"name": "web", "taskSpec": {"containerSpec": {"image": "img:1", **container}}}


def container_spec(**container: Any) -> dict[str, Any]:
    return map_service(inputs(**container)).spec["TaskTemplate"]["ContainerSpec"]


def test_env_map_becomes_key_value_list() -> None:
    assert container_spec(env={"B": "2", "A": "x=y"})["Env"] == ["A=x=y", "B=2"]


def test_commands_become_command_and_args_stay_args() -> None:
    spec = container_spec(commands=["perl", "-e"], args=["print 1"])
    assert (spec["Command"], spec["Args"]) == (["perl", "-e"], ["print 1"])


def test_health_check_durations_become_nanoseconds() -> None:
    check = container_spec(healthcheck={"tests": ["CMD", "true"], "interval": "10s", "startPeriod": "1m0s", "retries": 3.0})["Healthcheck"]
    assert check == {"Test": ["CMD", "true"], "Interval": 10_000_000_000, "StartPeriod": 60_000_000_000, "Retries": 3}


def test_fields_the_provider_always_sends_are_sent() -> None:
    spec = container_spec()
    assert (spec["Healthcheck"], spec["StopGracePeriod"], spec["Init"], spec["Isolation"], spec["DNSConfig"]) == ({}, 0, False, "default", {})


def test_secret_reference_defaults_to_root_and_mode_0444() -> None:
    secret = container_spec(secrets=[{"secretId": "abc", "secretName": "pw", "fileName": "pw"}])["Secrets"][0]
    assert secret == {"SecretID": "abc", "SecretName": "pw", "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o444}}


def test_network_by_id_becomes_target_with_aliases() -> None:
    plan = map_service({**inputs(), "taskSpec": {"containerSpec": {"image": "i"}, "networksAdvanceds": [{"id": "n1", "aliases": ["web"]}]}})
    assert plan.spec["TaskTemplate"]["Networks"] == [{"Target": "n1", "Aliases": ["web"]}]


def test_update_config_takes_the_schema_defaults() -> None:
    plan = map_service({**inputs(), "updateConfig": {"order": "start-first"}})
    assert plan.spec["UpdateConfig"] == {"Parallelism": 1, "FailureAction": "pause", "MaxFailureRatio": 0.0, "Order": "start-first", "Monitor": 5_000_000_000}


def test_host_mode_port_with_dnsrr() -> None:
    plan = map_service({**inputs(), "endpointSpec": {"mode": "dnsrr", "ports": [{"targetPort": 80.0, "publishedPort": 8080.0, "publishMode": "host"}]}})
    assert plan.spec["EndpointSpec"] == {
        "Mode": "dnsrr",
        "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host", "PublishedPort": 8080}],
    }


def test_converge_config_defaults_to_7s_delay_and_3m_timeout() -> None:
    converge = map_service({**inputs(), "convergeConfig": {}}).converge
    assert converge is not None and (converge.delay_seconds, converge.timeout_seconds) == (7, 180)


def test_unknown_container_spec_input_is_rejected() -> None:
    with pytest.raises(UnsupportedInput, match=r"taskSpec\.containerSpec\.gpus"):
        map_service(inputs(gpus="all"))


def test_secret_data_must_be_standard_base64() -> None:
    with pytest.raises(UnsupportedInput, match="base64"):
        map_secret({"name": "s", "data": "not base64!"})


def test_config_takes_data_raw_as_text() -> None:
    assert map_service_config({"name": "c", "dataRaw": "hello"}).data == b"hello"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (15, "15s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (3660, "1h1m"), (0.5, "500ms")])
def test_service_durations_are_stored_as_short_dur_writes_them(seconds: float, text: str) -> None:
    assert short_duration_text(int(seconds * 1_000_000_000)) == text


def test_config_data_is_read_back_as_base64() -> None:
    state = config_state({"name": "c", "data": "aGk="}, {"Spec": {"Name": "c", "Data": "aGk=", "Labels": {"a": "b"}}})
    assert (state["data"], state["labels"]) == ("aGk=", [{"label": "a", "value": "b"}])


SERVICE_INSPECT: dict[str, Any] = {
    "Spec": {
        "Name": "web",
        "TaskTemplate": {
            "ContainerSpec": {"Image": "img:1", "Init": False, "StopGracePeriod": 0, "Healthcheck": {"Test": ["CMD", "true"], "Interval": 60_000_000_000}, "DNSConfig": {}, "Isolation": "default"},
            "Resources": {},
            "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
            "Placement": {},
            "Networks": [{"Target": "n1", "Aliases": ["web"]}],
            "ForceUpdate": 0,
            "Runtime": "container",
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr"},
    },
    "Endpoint": {"Spec": {"Mode": "dnsrr"}},
}


def planned(declared: dict[str, Any]) -> list[tuple[str, bool]]:
    stored = service_state(declared, SERVICE_INSPECT)
    change = diff(URN, SERVICE, "web", stored, declared, Options())
    return [] if change is None else [(prop.name, prop.replaces) for prop in change.properties]


def declared(**container: Any) -> dict[str, Any]:
    return {"name": "web", "taskSpec": {"containerSpec": {"image": "img:1", **container}, "networksAdvanceds": [{"id": "n1", "aliases": ["web"]}]}}


def test_read_back_of_what_was_declared_plans_no_change() -> None:
    assert planned(declared(healthcheck={"tests": ["CMD", "true"], "interval": "1m"})) == []


def test_one_minute_written_1m0s_plans_an_in_place_update() -> None:
    assert planned(declared(healthcheck={"tests": ["CMD", "true"], "interval": "1m0s"})) == [("taskSpec.containerSpec.healthcheck.interval", False)]


def test_image_change_is_an_in_place_update() -> None:
    stored = service_state(declared(), SERVICE_INSPECT)
    change = diff(URN, SERVICE, "web", stored, declared(image="img:2"), Options())
    assert change is not None and (change.action, [p.name for p in change.properties]) == ("update", ["taskSpec.containerSpec.image"])


def test_network_given_by_name_is_stored_by_id_and_replaces_every_up() -> None:
    by_name = declared()
    by_name["taskSpec"]["networksAdvanceds"] = [{"name": "hx-net", "aliases": ["web"]}]
    assert planned(by_name) == [("taskSpec.networksAdvanceds", True)]


def test_sysctl_change_replaces_the_service() -> None:
    assert planned(declared(sysctl={"net.core.somaxconn": "1024"})) == [("taskSpec.containerSpec.sysctl", True)]


def task(slot: int, state: str, desired: str = "running") -> dict[str, Any]:
    return {"Slot": slot, "DesiredState": desired, "Status": {"State": state}, "NodeID": "n"}


def test_a_starting_task_does_not_count_as_running() -> None:
    assert running_replicas(SERVICE_INSPECT, [task(1, "starting")], {"n"}) == (0, 1)


def test_a_running_task_counts() -> None:
    assert running_replicas(SERVICE_INSPECT, [task(1, "running")], {"n"}) == (1, 1)


def test_completed_rollback_fails_the_update_with_swarms_message() -> None:
    service = {"UpdateStatus": {"State": "rollback_completed", "Message": "update rolled back due to failure"}}
    with pytest.raises(ServiceDidNotConverge, match="service rollback completed: update rolled back"):
        update_progress(service, 1, 1, 10)


def test_running_count_is_not_trusted_before_the_providers_first_look() -> None:
    assert update_progress({"UpdateStatus": {"State": "updating"}}, 1, 1, 1) == "updating"


def test_swarm_settings_are_the_engines_own() -> None:
    settings = swarm_settings("unix:///srv/engine/docker.sock", 3000)
    assert (settings.listen_port, settings.data_path_port, settings.address_pool) == (15377, 17789, "10.203.0.0/16")
    assert settings.gwbridge_interface.startswith("gw-") and len(settings.gwbridge_interface) == 11
