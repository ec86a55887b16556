"""Published host ports: the settings know each one a container publishes, and two that collide are refused."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, load_config, resolve_settings
from tests.program import STACKS
from tests.unit.conftest import Evaluate
from tests.stack_config import ALERT_RECEIVERS

SYNAPSE = {"server_name": "example.com", "admin_username": "admin"}
VOICEGROW = {"enabled": True, "server_image": "registry.example.com/voicegrow/server:1.0.0"}


def _problems(stack: str = "prod", **raw: Any) -> str:
    raw.setdefault("synapse", SYNAPSE)
    raw.setdefault("proxy", {"acme_email": "ops@example.com"})
    raw.setdefault("monitoring", ALERT_RECEIVERS)
    raw.setdefault("voicegrow", VOICEGROW)
    with pytest.raises(ConfigError) as error:
        resolve_settings("selfhosted", stack, raw)
    return str(error.value)


def _accepted(stack: str = "prod", **raw: Any) -> None:
    raw.setdefault("synapse", SYNAPSE)
    raw.setdefault("proxy", {"acme_email": "ops@example.com"})
    raw.setdefault("monitoring", ALERT_RECEIVERS)
    raw.setdefault("voicegrow", VOICEGROW)
    resolve_settings("selfhosted", stack, raw)


PUBLISHING = [
    *[pytest.param(stack, {}, id=stack) for stack in STACKS],
    pytest.param("dev", {"voicegrow": {**VOICEGROW, "publish_data_ports": True}}, id="dev-data-ports"),
    pytest.param("prod", {"proxy": {"federation_port": 8448}, "voicegrow": {"replicas": 3}}, id="prod-federation-3-replicas"),
]


@pytest.mark.parametrize(("stack", "overrides"), PUBLISHING)
def test_the_settings_list_exactly_the_host_ports_the_containers_publish(
    evaluate: Evaluate, stack: str, overrides: dict[str, Any]
) -> None:
    mocks = evaluate(stack, overrides=overrides).mocks
    declared = sorted(
        (port["ip"], int(port["external"]))
        for container in mocks.of_type("docker:index/container:Container")
        for port in container.value("ports") or []
    )
    listed = sorted((port.address, port.port) for port in load_config().settings.published_ports())
    assert declared and declared == listed


def test_two_ports_on_the_same_address_are_refused_naming_both_keys_and_the_port() -> None:
    problems = _problems(voicegrow={**VOICEGROW, "http_port": 8008, "replicas": 1})
    assert "selfhosted:synapse.http_port and voicegrow.http_port both publish port 8008 on 127.0.0.1" in problems


def test_a_collision_says_how_to_fix_it() -> None:
    problems = _problems(synapse={**SYNAPSE, "wellknown_port": 8008})
    assert "give one of them another port" in problems


def test_a_replica_port_that_takes_another_replicas_port_is_refused_naming_both_replicas() -> None:
    problems = _problems(voicegrow={**VOICEGROW, "ws_port": 9000, "http_port": 9001, "replicas": 2})
    assert "voicegrow.http_port (replica 1) and voicegrow.ws_port (replica 2) both publish port 9001" in problems
    assert "replica N publishes the base port + N - 1" in problems


def test_replicas_that_reach_another_settings_port_are_refused() -> None:
    problems = _problems(voicegrow={**VOICEGROW, "replicas": 9})
    assert "synapse.http_port and voicegrow.http_port (replica 9) both publish port 8008" in problems


def test_all_addresses_collide_with_a_specific_one_on_the_same_port() -> None:
    problems = _problems(synapse={**SYNAPSE, "http_port": 443})
    assert "synapse.http_port and proxy.https_port both publish port 443 on 127.0.0.1 and 0.0.0.0" in problems


def test_the_same_port_on_two_specific_addresses_is_accepted() -> None:
    _accepted(
        synapse={**SYNAPSE, "http_bind": "127.0.0.1", "http_port": 9443},
        voicegrow={**VOICEGROW, "bind": "10.0.0.5", "allow_public_direct_ports": True, "http_port": 9443, "replicas": 1},
    )


def test_a_port_the_proxy_does_not_publish_without_tls_is_free() -> None:
    _accepted("dev", synapse={"server_name": "matrix.localhost", "http_port": 443})


def test_a_disabled_component_publishes_nothing() -> None:
    _accepted(synapse={**SYNAPSE, "enabled": False, "http_port": 8000})


def test_a_dev_data_port_collides_with_a_server_port() -> None:
    problems = _problems("dev", synapse={"server_name": "matrix.localhost"}, voicegrow={**VOICEGROW, "publish_data_ports": True, "http_port": 9000})
    assert "voicegrow.http_port and voicegrow.publish_data_ports (MinIO) both publish port 9000 on 127.0.0.1" in problems


def test_replica_ports_beyond_65535_are_refused() -> None:
    problems = _problems(voicegrow={**VOICEGROW, "ws_port": 65535, "replicas": 2})
    assert "selfhosted:voicegrow.ws_port 65535 with voicegrow.replicas 2 publishes ports up to 65536, above 65535" in problems


def test_every_collision_is_reported() -> None:
    problems = _problems(synapse={**SYNAPSE, "http_port": 80, "wellknown_port": 443})
    assert "synapse.http_port and proxy.http_port" in problems
    assert "selfhosted:synapse.wellknown_port and proxy.https_port" in problems
