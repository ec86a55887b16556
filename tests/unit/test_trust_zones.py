"""Networks by trust zone, under mocks: the proxy, which faces the internet, shares a network only
with what it serves; databases, Redis, object-store APIs, log and alert stores, exporters and the
Docker socket's holders sit on networks it cannot reach."""

from __future__ import annotations

import pytest

from tests.program import STACKS
from tests.unit.conftest import Evaluate, Evaluation

CONTAINER = "docker:index/container:Container"
# What the proxy serves in each shipped stack (the prober joins to probe the public hosts through it).
SERVED = {
    "dev": {"synapse", "synapse-wellknown", "monitoring-blackbox-exporter"},
    "test": {"synapse", "synapse-wellknown", "voicegrow-server-1", "monitoring-blackbox-exporter"},
    # With tls acme, certbot too: it checks that the proxy serves its challenge webroot.
    "staging": {"synapse", "synapse-wellknown", "voicegrow-server-1", "voicegrow-server-2", "monitoring-blackbox-exporter", "proxy-acme"},
    "prod": {
        "synapse", "synapse-wellknown", "voicegrow-server-1", "voicegrow-server-2", "monitoring-blackbox-exporter", "proxy-acme",
        *(f"synapse-{worker}" for worker in ("sync1", "sync2", "sync3", "client-reader1", "federation-sender1", "media1", "pusher1", "background1", "event-persister1", "event-persister2")),
    },
}
NEVER_BESIDE_THE_PROXY = (
    "synapse-postgres", "synapse-redis", "voicegrow-mysql", "voicegrow-redis", "voicegrow-minio", "backup", "healer",
    "monitoring-prometheus", "monitoring-alertmanager", "monitoring-loki", "monitoring-alloy", "monitoring-cadvisor",
    "monitoring-node-exporter", "monitoring-postgres-exporter", "monitoring-mysql-exporter", "monitoring-redis-exporter",
)


def _networks(evaluation: Evaluation) -> dict[str, set[str]]:
    """Each long-running container's networks, by container."""
    return {
        container.name: {network["name"] for network in container.value("networksAdvanced") or []}
        for container in evaluation.mocks.of_type(CONTAINER)
        if container.value("mustRun") is not False
    }


def _beside_the_proxy(evaluation: Evaluation) -> set[str]:
    networks = _networks(evaluation)
    return {name for name, joined in networks.items() if name != "proxy" and joined & networks["proxy"]}


@pytest.mark.parametrize("stack", STACKS)
def test_the_proxy_is_on_the_front_network_alone(evaluate: Evaluate, stack: str) -> None:
    assert _networks(evaluate(stack))["proxy"] == {f"selfhosted-{stack}-front"}


@pytest.mark.parametrize("stack", STACKS)
def test_only_what_the_proxy_serves_shares_its_network(evaluate: Evaluate, stack: str) -> None:
    beside = _beside_the_proxy(evaluate(stack))
    assert beside == SERVED[stack]
    assert not beside & set(NEVER_BESIDE_THE_PROXY)


def test_a_monitoring_host_served_by_the_proxy_puts_its_service_beside_it(evaluate: Evaluate) -> None:
    hosts = {"grafana_host": "grafana.example.com", "prometheus_host": "prometheus.example.com", "alertmanager_host": "alerts.example.com"}
    beside = _beside_the_proxy(evaluate("prod", overrides={"monitoring": hosts}))
    assert {"monitoring-grafana", "monitoring-prometheus", "monitoring-alertmanager"} <= beside
    assert not beside & {"monitoring-loki", "monitoring-alloy", "monitoring-cadvisor", "synapse-postgres"}


def test_minio_is_beside_the_proxy_only_for_its_console_host(evaluate: Evaluate) -> None:
    assert "voicegrow-minio" not in _beside_the_proxy(evaluate("prod"))
    console = evaluate("prod", overrides={"voicegrow": {"console_host": "console.example.com"}})
    assert "voicegrow-minio" in _beside_the_proxy(console)


@pytest.mark.parametrize("stack", STACKS)
def test_on_the_front_network_each_served_container_answers_to_the_name_the_proxy_uses(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    front = f"selfhosted-{stack}-front"
    conf = evaluation.mocks.files("proxy")["/etc/nginx/conf.d/default.conf"]
    aliases = {
        alias
        for container in evaluation.mocks.of_type(CONTAINER)
        for network in container.value("networksAdvanced") or []
        if network["name"] == front
        for alias in network.get("aliases") or []
    }
    upstreams = {line.split()[1].rsplit(":", 1)[0] for line in conf.splitlines() if line.strip().startswith("server ") and ":" in line}
    assert upstreams and upstreams <= aliases, upstreams - aliases


def _engine_socket_holders(evaluation: Evaluation) -> dict[str, set[str]]:
    """The containers that mount the engine's socket, each with its networks."""
    networks = _networks(evaluation)
    return {
        container.name: networks[container.name]
        for container in evaluation.mocks.of_type(CONTAINER)
        if container.value("mustRun") is not False
        and any((volume.get("hostPath") or "").endswith("docker.sock") for volume in container.value("volumes") or [])
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_engine_is_reached_by_the_healer_without_a_network_and_through_the_filter_alone(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack, overrides={"monitoring": {"level": "full"}})
    holders = _engine_socket_holders(evaluation)
    filter_network = f"selfhosted-{stack}-monitoring-engine-api"
    assert holders == {"healer": set(), "monitoring-engine-api": {filter_network}}
    assert evaluation.mocks.named("healer", CONTAINER).value("networkMode") == "none"
    # Who can talk to the filter: the two readers, and nothing the proxy or the data stores are beside.
    beside_the_filter = {name for name, joined in _networks(evaluation).items() if filter_network in joined}
    assert beside_the_filter == {"monitoring-engine-api", "monitoring-alloy", "monitoring-cadvisor"}
    cadvisor = evaluation.mocks.named("monitoring-cadvisor", CONTAINER)
    assert "--docker=tcp://engine-api:2375" in cadvisor.value("command")
    assert 'host = "tcp://engine-api:2375"' in evaluation.mocks.files("monitoring-alloy")["/etc/alloy/config.alloy"]
