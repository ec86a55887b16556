"""The same stack files on one engine and on Docker Swarm: the same services, limits, health
checks, networks and secrets, whichever runs them; what Swarm adds (placement, rolling updates,
rollback); and the settings it refuses."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from components.runtime.workload import go_short_duration
from tests.go_values import parse_duration_ns, short_duration_text
from components.rendering.voicegrow import SERVER_SECRET_NAMES
from config import ConfigError
from tests.unit.conftest import Evaluate, Evaluation, Registration
from tests.unit.mocks import Declared

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
CONFIG = "docker:index/serviceConfig:ServiceConfig"
NETWORK = "docker:index/network:Network"
MIB = 1024 * 1024
NODES = {"manager-1": ["data", "ingress"], "worker-1": ["app"], "worker-2": ["app"]}
# Where both orchestrators can run the stack: the settings Swarm asks for, the rest as the stack file says.
SWARM_READY = {"monitoring": {"level": "basic"}, "tls": "self-signed", "voicegrow": {"secret_files": True}, "healer": {"enabled": False}}
SWARM = {**SWARM_READY, "orchestrator": "swarm", "swarm": {"nodes": NODES}}
STACKS = ("test", "staging", "prod")
SECRET_VARIABLES = (
    *SERVER_SECRET_NAMES, "POSTGRES_PASSWORD", "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD",
)


def _pair(evaluate: Evaluate, stack: str) -> tuple[dict[str, Declared], dict[str, Declared], Evaluation]:
    """The long-running containers of the stack on one engine, and its services on Swarm, by name."""
    containers = {c.name: c for c in evaluate(stack, overrides=SWARM_READY).mocks.of_type(CONTAINER) if c.value("restart") == "unless-stopped"}
    swarm = evaluate(stack, overrides=SWARM)
    return containers, {s.name: s for s in swarm.mocks.of_type(SERVICE)}, swarm


def _seconds(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """A health check with its durations in nanoseconds, whichever form they were written in."""
    if check is None:
        return None
    return {key: parse_duration_ns(value) if key in ("interval", "timeout", "startPeriod") else value for key, value in check.items()}


def _spec(service: Declared) -> dict[str, Any]:
    return service.value("taskSpec")["containerSpec"]


@pytest.mark.parametrize("stack", STACKS)
def test_swarm_runs_a_service_for_every_container_and_nothing_else(evaluate: Evaluate, stack: str) -> None:
    containers, services, _ = _pair(evaluate, stack)
    assert set(services) == set(containers)
    for name, service in services.items():
        assert service.value("name") == containers[name].value("name")
        assert service.value("mode") == {"replicated": {"replicas": 1}}, name


@pytest.mark.parametrize("stack", STACKS)
def test_limits_and_reservations_carry_over(evaluate: Evaluate, stack: str) -> None:
    containers, services, _ = _pair(evaluate, stack)
    for name, service in services.items():
        container, resources = containers[name], service.value("taskSpec")["resources"]
        assert resources["limits"]["memoryBytes"] == container.value("memory") * MIB, name
        cpus = container.value("cpus")
        assert resources["limits"].get("nanoCpus") == (round(float(cpus) * 1e9) if cpus else None), name
        reservation = container.value("memoryReservation")
        assert (resources.get("reservation") or {}).get("memoryBytes") == (reservation * MIB if reservation else None), name


@pytest.mark.parametrize("stack", STACKS)
def test_health_checks_users_capabilities_and_read_only_roots_carry_over(evaluate: Evaluate, stack: str) -> None:
    containers, services, _ = _pair(evaluate, stack)
    for name, service in services.items():
        container, spec = containers[name], _spec(service)
        assert _seconds(spec.get("healthcheck")) == _seconds(container.value("healthcheck")), name
        assert spec.get("user") == container.value("user"), name
        assert spec.get("readOnly") == container.value("readOnly"), name
        assert spec["capDrops"] == ["ALL"], name
        assert spec.get("capAdds") == container.value("capabilities").get("adds"), name
        assert spec["stopGracePeriod"] == go_short_duration(int(container.value("stopTimeout"))), name


@pytest.mark.parametrize("stack", STACKS)
def test_services_join_the_same_networks_under_the_same_names(evaluate: Evaluate, stack: str) -> None:
    containers, services, swarm = _pair(evaluate, stack)
    network_names = {f"{n.name}-id": n.value("name") for n in swarm.mocks.of_type(NETWORK)}
    for name, service in services.items():
        joined = {network_names[item["id"]]: sorted(item.get("aliases") or []) for item in service.value("taskSpec").get("networksAdvanceds", [])}
        expected = {item["name"]: sorted(item.get("aliases") or []) for item in containers[name].value("networksAdvanced") or []}
        assert joined == expected, name


def test_networks_are_encrypted_attachable_overlays(evaluate: Evaluate) -> None:
    networks = evaluate("prod", overrides=SWARM).mocks.of_type(NETWORK)
    assert networks
    for network in networks:
        assert network.value("driver") == "overlay", network.name
        assert network.value("options") == {"encrypted": ""}, network.name
        assert network.value("attachable") is True, network.name


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_is_in_any_services_environment(evaluate: Evaluate, stack: str) -> None:
    _, services, _ = _pair(evaluate, stack)
    for name, service in services.items():
        environment = _spec(service).get("env") or {}
        secret = {key: value for key, value in environment.items() if key in SECRET_VARIABLES and value}
        assert secret == {} and not [key for key, value in environment.items() if "generated-" in value], name


def test_every_file_a_container_reads_is_a_secret_or_config_of_its_service(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    objects = {f"{o.name}-id": o for o in [*swarm.mocks.of_type(SECRET), *swarm.mocks.of_type(CONFIG)]}
    synapse = _spec(swarm.mocks.named("synapse", SERVICE))
    files = {item["fileName"]: item for item in synapse["secrets"]}
    homeserver = files["/config/homeserver.yaml"]
    # The service's user alone reads it, as in its file directory.
    assert (homeserver["fileUid"], homeserver["fileGid"], homeserver["fileMode"]) == ("991", "991", 0o400)
    content = base64.b64decode(objects[homeserver["secretId"]].value("data")).decode()
    assert "registration_shared_secret_path" in content and objects[homeserver["secretId"]].type == SECRET


def test_computed_files_are_secrets_and_plain_text_files_are_configs(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    secrets, configs = swarm.mocks.of_type(SECRET), swarm.mocks.of_type(CONFIG)
    assert secrets and configs
    for config in configs:
        assert not config.is_secret("data") and "generated-" not in base64.b64decode(config.value("data")).decode(), config.name
    assert all(secret.is_secret("data") for secret in secrets if "homeserver" in secret.name)


def test_a_workers_config_is_a_secret_on_swarm_too(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    workers = [secret for secret in swarm.mocks.of_type(SECRET) if "worker-yaml" in secret.name]
    assert workers and all(secret.is_secret("data") for secret in workers)
    assert not [config.name for config in swarm.mocks.of_type(CONFIG) if "worker-yaml" in config.name]


def test_a_changed_file_is_a_new_secret_so_the_service_rolls_onto_it(evaluate: Evaluate) -> None:
    def homeserver_secret(value: str) -> str:
        overrides = {**SWARM, "synapse": {"max_upload_size": value}}
        return evaluate("prod", overrides=overrides).mocks.named("synapse-config-homeserver-yaml", SECRET).value("name")

    first, second = homeserver_secret("50M"), homeserver_secret("60M")
    assert first != second and len(first) <= 64 and first.startswith("selfhosted-prod-synapse")


@pytest.mark.parametrize(
    ("service", "nodes"),
    [("synapse-postgres", "data"), ("voicegrow-mysql", "data"), ("voicegrow-minio", "data"), ("synapse", "data"),
     ("backup", "data"), ("voicegrow-server-1", "app"), ("voicegrow-server-2", "app"), ("synapse-wellknown", "app"), ("proxy", "ingress")],
)
def test_services_are_placed_by_node_labels_never_by_hostname(evaluate: Evaluate, service: str, nodes: str) -> None:
    placement = evaluate("prod", overrides=SWARM).mocks.named(service, SERVICE).value("taskSpec")["placement"]
    # The stack's own labels (by its prefix): stacks sharing a swarm place their services independently.
    assert placement["constraints"] == [f"node.labels.selfhosted-prod.{nodes}==true"]


def test_stateless_replicas_start_first_and_data_services_stop_first_both_rolling_back(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    for name, order in (("voicegrow-server-1", "start-first"), ("synapse-postgres", "stop-first"), ("proxy", "stop-first")):
        service = swarm.mocks.named(name, SERVICE)
        update = service.value("updateConfig")
        assert (update["order"], update["parallelism"], update["failureAction"]) == (order, 1, "rollback"), name
        assert service.value("rollbackConfig")["order"] == order, name
        assert service.value("taskSpec")["restartPolicy"]["condition"] == "any", name


def test_the_proxy_publishes_in_host_mode_and_loopback_ports_are_not_published(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    ports = swarm.mocks.named("proxy", SERVICE).value("endpointSpec")["ports"]
    assert {(p["targetPort"], p["publishedPort"], p["publishMode"]) for p in ports} >= {(80, 80, "host"), (443, 443, "host")}
    for service in swarm.mocks.of_type(SERVICE):
        assert service.value("endpointSpec")["mode"] == "dnsrr", service.name
        if service.name != "proxy":
            assert not service.value("endpointSpec").get("ports"), service.name


def test_nodes_are_labelled_before_any_service_is_placed(evaluate: Evaluate, registrations: dict[str, Registration]) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    labels = {c.name: c.value("create") for c in swarm.mocks.of_type("command:local:Command") if c.name.startswith("swarm-node-")}
    assert set(labels) == {"swarm-node-manager-1", "swarm-node-worker-1", "swarm-node-worker-2"}
    assert "--label-add selfhosted-prod.data=true" in labels["swarm-node-manager-1"]
    assert "--label-rm selfhosted-prod.data" in labels["swarm-node-worker-1"]
    for service in swarm.mocks.of_type(SERVICE):
        assert set(labels) <= registrations[service.name].dependencies, service.name


def test_commands_run_in_the_services_running_task(evaluate: Evaluate) -> None:
    command = evaluate("prod", overrides=SWARM).mocks.named("voicegrow-mysql-passwords").value("create")
    assert "docker service inspect selfhosted-prod-voicegrow-mysql" in command
    assert "docker exec -i \"$(docker ps -q --filter label=com.docker.swarm.service.name=selfhosted-prod-voicegrow-mysql --filter status=running | head -n 1)\"" in command


def test_the_program_talks_to_the_data_node_and_keeps_the_data_where_it_is(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    check = swarm.mocks.named("swarm-data-node").value("create")
    assert "docker node inspect -f '{{.ID}}' manager-1" in check and "docker info -f '{{.Swarm.NodeID}}'" in check
    assert "--filter node.label=selfhosted-prod.data=true" in check
    assert "swarm-data-node" in registrations["swarm-node-worker-1"].dependencies


def test_the_proxy_reloads_itself_when_an_upstreams_address_changes(evaluate: Evaluate) -> None:
    # Swarm replaces a task (failed health check, crash, drained node) at a new address.
    swarm = evaluate("prod", overrides=SWARM)
    command = " ".join(_spec(swarm.mocks.named("proxy", SERVICE))["args"])
    for host in ("synapse", "wellknown", "server-1", "server-2", "synapse-media1", "synapse-sync1"):
        assert f" {host} " in command or f" {host};" in command, host
    assert "getent hosts" in command and "nginx -s reload" in command


def test_a_rolling_replica_waits_for_its_update_and_the_proxys_look_not_a_docker_exec(evaluate: Evaluate) -> None:
    reload = evaluate("prod", overrides=SWARM).mocks.named("voicegrow-server-1-proxy-reload").value("create")
    assert "docker service inspect -f" in reload and "selfhosted-prod-voicegrow-server-1" in reload
    assert reload.endswith("sleep 10") and "docker exec" not in reload


def test_secret_and_config_names_are_unique_and_fit_docker(evaluate: Evaluate) -> None:
    # The LLM keys default to the TTS keys: same content, still two names.
    swarm = evaluate("prod", overrides=SWARM, secrets={"tts_api_key": "ak", "tts_secret_key": "sk"})
    names = [o.value("name") for o in [*swarm.mocks.of_type(SECRET), *swarm.mocks.of_type(CONFIG)]]
    assert len(names) == len(set(names)) and max(map(len, names)) <= 64


def test_services_run_the_images_by_registry_reference_every_node_can_pull(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    assert _spec(swarm.mocks.named("synapse-postgres", SERVICE))["image"] == "postgres:16.10-bookworm"


def test_containers_stay_the_default(evaluate: Evaluate) -> None:
    mocks = evaluate("prod").mocks
    assert mocks.of_type(CONTAINER) and not mocks.of_type(SERVICE)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"swarm": {"nodes": {}}}, "selfhosted:orchestrator swarm needs swarm.nodes"),
        ({"swarm": {"nodes": {"a": ["data", "app", "ingress"], "b": ["data"]}}}, "selfhosted:swarm.nodes gives 'data' to 2 nodes"),
        ({"swarm": {"nodes": {"a": ["data", "app"]}}}, "selfhosted:swarm.nodes gives 'ingress' to no node"),
        ({"voicegrow": {"server_image": None, "server_source": "tests/e2e/images/probe"}}, "voicegrow.server_source cannot be used with orchestrator swarm"),
        ({"healer": {"enabled": True}}, "healer.enabled must be false with orchestrator swarm"),
        ({"voicegrow": {"asr": {"device": "cuda"}}}, "voicegrow.asr.device 'cuda' is not available with orchestrator swarm"),
        ({"monitoring": "full"}, "monitoring.level 'full' is not available with orchestrator swarm"),
        ({"tls": "acme", "proxy": {"acme_email": "ops@example.com"}}, "tls 'acme' is not available with orchestrator swarm"),
        ({"proxy": {"bind": "127.0.0.1"}}, "proxy.bind 127.0.0.1 cannot be kept with orchestrator swarm"),
        ({"voicegrow": {"secret_files": False}}, "voicegrow.secret_files must be true with orchestrator swarm"),
        ({"orchestrator": "containers"}, "swarm.nodes is only read with orchestrator: swarm"),
        ({"orchestrator": "kubernetes"}, "orchestrator"),
    ],
)
def test_settings_swarm_cannot_keep_are_refused_naming_the_key(evaluate: Evaluate, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        evaluate("prod", overrides={**SWARM, **overrides})


def test_without_settings_swarm_cannot_keep_a_stack_file_needs_only_the_orchestrator_and_its_nodes(evaluate: Evaluate) -> None:
    # The healer defaults to off on Swarm; backups stay as the environment has them.
    overrides = {"orchestrator": "swarm", "swarm": {"nodes": NODES}, "voicegrow": {"secret_files": True}, "monitoring": {"level": "basic"}, "tls": "self-signed"}
    services = {service.name for service in evaluate("prod", overrides=overrides).mocks.of_type(SERVICE)}
    assert "backup" in services and "healer" not in services


def test_the_backup_job_reads_its_credentials_as_root_only_secrets_and_is_run_in_its_task(evaluate: Evaluate) -> None:
    swarm = evaluate("prod", overrides=SWARM)
    backup = _spec(swarm.mocks.named("backup", SERVICE))
    files = {item["fileName"]: (item["fileUid"], item["fileGid"], item["fileMode"]) for item in backup["secrets"]}
    assert files["/etc/backup/pgpass"] == ("0", "0", 0o600) and files["/etc/backup/mysql.cnf"] == ("0", "0", 0o600)
    # Its archives stay on the data node, in its volume.
    assert [mount["target"] for mount in backup["mounts"] if mount["type"] == "volume"][:1] == ["/backups"]
    in_its_task = 'docker exec "$(docker ps -q --filter label=com.docker.swarm.service.name=selfhosted-prod-backup --filter status=running | head -n 1)"'
    assert swarm.output("backup_now_command")[0] == f"{in_its_task} backup-now"
    before_change = swarm.mocks.named("backup-before-change", "command:local:Command").value("create")
    assert "docker service inspect selfhosted-prod-backup" in before_change and f"{in_its_task} backup-now --before-change" in before_change


def test_service_durations_are_written_as_the_provider_stores_them(evaluate: Evaluate) -> None:
    # Written as Go prints them ("1m0s"), every `pulumi up` would update every service.
    for service in evaluate("prod", overrides=SWARM).mocks.of_type(SERVICE):
        check = _spec(service).get("healthcheck") or {}
        durations = [_spec(service)["stopGracePeriod"], service.value("updateConfig")["monitor"], *(check.get(k) for k in ("interval", "timeout", "startPeriod") if check)]
        for duration in durations:
            assert short_duration_text(parse_duration_ns(duration)) == duration, (service.name, duration)
