"""SynapseStack under mocks: what every stack file declares, in preview and in update."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from config import ConfigError
from config.profiles import LARGE, MEDIUM, SMALL
from tests.program import STACKS
from tests.unit.conftest import Evaluate, Evaluation

CONTAINERS = ("synapse-postgres", "synapse", "synapse-wellknown")
MODES = [pytest.param(False, id="up"), pytest.param(True, id="preview")]


def _env(evaluation: Evaluation, container: str) -> dict[str, str]:
    envs = evaluation.container(container).value("envs") or []
    return dict(item.split("=", 1) for item in envs)


def _upload(evaluation: Evaluation, container: str, path: str) -> str:
    return evaluation.mocks.files(container)[path]


def _homeserver(evaluation: Evaluation) -> dict[str, Any]:
    return yaml.safe_load(_upload(evaluation, "synapse", "/config/homeserver.yaml"))


def _role(evaluation: Evaluation, name: str) -> str:
    labels = evaluation.container(name).value("labels")
    return next(label["value"] for label in labels if label["label"] == "selfhosted.role")


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_declares_the_three_synapse_containers(evaluate: Evaluate, stack: str, preview: bool) -> None:
    evaluation = evaluate(stack, preview=preview)
    declared = {resource.name for resource in evaluation.mocks.of_type("docker:index/container:Container")}
    services = {name for name in declared if name.startswith("synapse") and not name.endswith("-files")}
    workers = {name for name in services if _role(evaluation, name) in ("synapse_worker", "synapse_redis")}
    assert services - workers == set(CONTAINERS)


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_container_restarts_unless_stopped_and_waits_for_health(
    evaluate: Evaluate, stack: str, preview: bool
) -> None:
    evaluation = evaluate(stack, preview=preview)
    for name in CONTAINERS:
        container = evaluation.container(name)
        assert container.value("restart") == "unless-stopped", name
        assert container.value("wait") is True, name
        assert container.value("healthcheck")["tests"], name


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_container_rotates_its_json_log(evaluate: Evaluate, stack: str, preview: bool) -> None:
    evaluation = evaluate(stack, preview=preview)
    for name in CONTAINERS:
        container = evaluation.container(name)
        assert container.value("logDriver") == "json-file"
        assert container.value("logOpts") == {"max-size": "10m", "max-file": "3"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_is_labelled_with_stack_component_and_role(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    for name in CONTAINERS:
        labels = {item["label"]: item["value"] for item in evaluation.container(name).value("labels")}
        assert labels["selfhosted.stack"] == stack
        assert labels["selfhosted.component"] == "synapse"
        assert labels["selfhosted.role"] in ("postgres", "synapse", "wellknown")


@pytest.mark.parametrize(
    ("stack", "profile"), [("dev", SMALL), ("test", SMALL), ("staging", MEDIUM), ("prod", LARGE)]
)
def test_limits_come_from_the_stack_profile(evaluate: Evaluate, stack: str, profile: Any) -> None:
    evaluation = evaluate(stack)
    for name, role in (("synapse-postgres", "postgres"), ("synapse", "synapse"), ("synapse-wellknown", "wellknown")):
        container = evaluation.container(name)
        assert container.value("memory") == profile.limits[role].memory_mb
        assert container.value("cpuShares") == profile.limits[role].cpu_weight
        assert container.value("memoryReservation") == profile.limits[role].reservation_mb


def test_small_profile_has_the_guides_memory_limits(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev")
    memory = {name: evaluation.container(name).value("memory") for name in ("synapse-postgres", "synapse", "synapse-wellknown")}
    assert memory == {"synapse-postgres": 384, "synapse": 1280, "synapse-wellknown": 32}


@pytest.mark.parametrize("stack", STACKS)
def test_synapse_and_postgres_have_weights_not_caps(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    weights = {name: evaluation.container(name).value("cpuShares") for name in ("synapse-postgres", "synapse")}
    assert weights == {"synapse-postgres": 1024, "synapse": 2048}
    assert evaluation.container("synapse-postgres").value("cpus") is None
    assert evaluation.container("synapse").value("cpus") is None


def test_a_cpu_weight_override_replaces_the_profile_weight(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev", overrides={"resources": {"synapse": {"cpu_weight": 4096}}})
    assert evaluation.container("synapse").value("cpuShares") == 4096


def test_a_resource_override_replaces_the_profile_limit(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev", overrides={"resources": {"postgres": {"memory": "512M", "cpus": 0.4}}})
    assert evaluation.container("synapse-postgres").value("memory") == 512
    assert evaluation.container("synapse-postgres").value("cpus") == "0.4"


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_port_is_not_published(evaluate: Evaluate, stack: str) -> None:
    assert not evaluate(stack).container("synapse-postgres").value("ports")


@pytest.mark.parametrize("stack", STACKS)
def test_synapse_is_published_on_loopback_8008_only(evaluate: Evaluate, stack: str) -> None:
    ports = evaluate(stack).container("synapse").value("ports")
    assert ports == [{"internal": 8008, "external": 8008, "ip": "127.0.0.1", "protocol": "tcp"}] or ports == [
        {"internal": 8008, "external": 8008, "ip": "127.0.0.1"}
    ]


def test_postgres_is_initialised_with_c_collation_and_ctype(evaluate: Evaluate) -> None:
    env = _env(evaluate("prod"), "synapse-postgres")
    assert env["POSTGRES_INITDB_ARGS"] == "--encoding=UTF8 --lc-collate=C --lc-ctype=C"


def test_postgres_tuning_is_passed_as_server_arguments(evaluate: Evaluate) -> None:
    command = evaluate("dev").container("synapse-postgres").value("command")
    assert command[0] == "postgres"
    assert "shared_buffers=96MB" in command and "effective_cache_size=256MB" in command
    assert "work_mem=4MB" in command and "maintenance_work_mem=32MB" in command


def test_medium_profile_gives_postgres_more_shared_buffers(evaluate: Evaluate) -> None:
    assert "shared_buffers=256MB" in evaluate("staging").container("synapse-postgres").value("command")


def test_postgres_health_check_is_pg_isready(evaluate: Evaluate) -> None:
    tests = evaluate("prod").container("synapse-postgres").value("healthcheck")["tests"]
    assert tests[:2] == ["CMD", "pg_isready"]


def test_postgres_health_check_asks_over_tcp_not_the_socket_the_first_start_init_server_uses(evaluate: Evaluate) -> None:
    tests = evaluate("prod").container("synapse-postgres").value("healthcheck")["tests"]
    assert tests[tests.index("-h") + 1] == "127.0.0.1"


def test_synapse_health_check_calls_health_endpoint(evaluate: Evaluate) -> None:
    tests = evaluate("prod").container("synapse").value("healthcheck")["tests"]
    assert "http://localhost:8008/health" in tests


def test_postgres_data_and_synapse_data_live_on_named_volumes(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    postgres_volumes = evaluation.container("synapse-postgres").value("volumes")
    synapse_volumes = evaluation.container("synapse").value("volumes")
    assert synapse_volumes[0] == {"volumeName": "selfhosted-prod-synapse-data", "containerPath": "/data"}
    assert postgres_volumes[0] == {"volumeName": "selfhosted-prod-synapse-postgres", "containerPath": "/var/lib/postgresql/data"}


def test_signing_key_lives_on_the_data_volume(evaluate: Evaluate) -> None:
    assert _homeserver(evaluate("prod"))["signing_key_path"].startswith("/data/")


def test_postgres_joins_only_the_private_network_and_what_the_proxy_serves_the_front_one_too(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    network = evaluation.mocks.named("synapse-network").value("name")
    served = {"synapse": [network, "selfhosted-prod-front"], "synapse-wellknown": [network, "selfhosted-prod-front"]}
    for name in CONTAINERS:
        networks = evaluation.container(name).value("networksAdvanced")
        assert [entry["name"] for entry in networks] == served.get(name, [network]), name


def test_postgres_reads_its_password_from_a_secret_file(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert _env(evaluation, "synapse-postgres")["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in _env(evaluation, "synapse-postgres")
    assert evaluation.mocks.named("synapse-postgres-files").is_secret("uploads")


def test_synapse_reads_every_secret_from_a_file(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("prod"))
    assert {key: homeserver[key] for key in homeserver if "secret" in key} == {
        "macaroon_secret_key_path": "/config/macaroon_secret_key",
        "form_secret_path": "/config/form_secret",
        "registration_shared_secret_path": "/config/registration_shared_secret",
        "worker_replication_secret_path": "/config/worker_replication_secret",
    }
    assert homeserver["redis"]["password_path"] == "/config/redis_password"
    assert "password" not in homeserver["database"]["args"]
    assert homeserver["database"]["args"]["passfile"] == "/config/pgpass"


def test_synapse_secret_files_hold_the_generated_values(evaluate: Evaluate) -> None:
    files = evaluate("prod").mocks.files("synapse")
    assert files["/config/macaroon_secret_key"] == "generated-macaroon-secret-key"
    assert files["/config/registration_shared_secret"] == "generated-registration-shared-secret"


def test_homeserver_yaml_is_a_secret_file(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert evaluation.mocks.named("synapse-files").is_secret("uploads")
    assert not evaluation.container("synapse").is_secret("envs")


def test_generated_database_password_reaches_both_postgres_and_synapse(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert evaluation.mocks.files("synapse-postgres")["/run/secrets/postgres_password"] == "generated-postgres-password"
    assert evaluation.mocks.files("synapse")["/config/pgpass"] == "postgres:5432:*:synapse:generated-postgres-password\n"


def test_operator_secret_replaces_the_generated_password(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", secrets={"postgres_password": "operator-chosen"})
    assert evaluation.mocks.files("synapse-postgres")["/run/secrets/postgres_password"] == "operator-chosen"
    assert not [r for r in evaluation.mocks.of_type("random:index/randomPassword:RandomPassword") if r.name == "postgres-password"]


def test_synapse_secrets_are_generated_once_each(evaluate: Evaluate) -> None:
    names = {r.name for r in evaluate("prod").mocks.of_type("random:index/randomPassword:RandomPassword")}
    assert {"macaroon-secret-key", "form-secret", "registration-shared-secret"} <= names


def test_report_stats_is_off(evaluate: Evaluate) -> None:
    assert _homeserver(evaluate("prod"))["report_stats"] is False


def test_listener_trusts_x_forwarded_and_binds_all_container_addresses(evaluate: Evaluate) -> None:
    listener = _homeserver(evaluate("prod"))["listeners"][0]
    assert listener["x_forwarded"] is True and listener["bind_addresses"] == ["0.0.0.0"]


def test_metrics_listener_only_with_full_monitoring(evaluate: Evaluate) -> None:
    assert [l["port"] for l in _homeserver(evaluate("prod"))["listeners"] if l["type"] == "metrics"] == [9000]
    assert [l["type"] for l in _homeserver(evaluate("dev"))["listeners"]] == ["http"]


def test_small_profile_tuning_matches_the_guide(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("dev"))
    assert homeserver["caches"]["global_factor"] == 0.2
    assert homeserver["caches"]["event_cache_size"] == "500"
    assert (homeserver["database"]["args"]["cp_min"], homeserver["database"]["args"]["cp_max"]) == (1, 2)
    assert homeserver["max_upload_size"] == "8M"
    assert homeserver["rc_message"] == {"per_second": 0.5, "burst_count": 10}


def test_prod_registration_requires_a_token(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("prod"))
    assert homeserver["enable_registration"] is True
    assert homeserver["registration_requires_token"] is True
    assert "enable_registration_without_verification" not in homeserver


def test_open_registration_only_where_the_stack_asks(evaluate: Evaluate) -> None:
    assert _homeserver(evaluate("dev"))["enable_registration_without_verification"] is True
    for stack in ("test", "staging", "prod"):
        assert "enable_registration_without_verification" not in _homeserver(evaluate(stack)), stack


def test_closed_registration_disables_it(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("prod", overrides={"synapse": {"registration": "closed"}}))
    assert homeserver["enable_registration"] is False


def test_extra_config_is_merged_over_rendered_homeserver(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("prod", overrides={"synapse": {"extra_config": {"caches": {"global_factor": 1.0}}}}))
    assert homeserver["caches"]["global_factor"] == 1.0
    assert homeserver["caches"]["event_cache_size"] == "5000"


def test_guests_are_refused_and_no_web_client_is_named_unless_asked(evaluate: Evaluate) -> None:
    homeserver = _homeserver(evaluate("prod"))
    assert homeserver["allow_guest_access"] is False and "web_client_location" not in homeserver
    asked = _homeserver(evaluate("prod", overrides={"synapse": {"guest_access": True, "web_client_location": "https://element.example.com/"}}))
    assert (asked["allow_guest_access"], asked["web_client_location"]) == (True, "https://element.example.com/")


def test_admin_bootstrap_runs_after_synapse_with_secrets_in_environment(evaluate: Evaluate) -> None:
    bootstrap = evaluate("prod").mocks.named("synapse-bootstrap")
    assert bootstrap.value("create").startswith("docker exec -i -e ADMIN_USERNAME -e ADMIN_PASSWORD")
    assert bootstrap.value("create").endswith("selfhosted-prod-synapse python3 -")
    assert bootstrap.is_secret("environment")
    assert "ADMIN_PASSWORD" not in bootstrap.value("create").split("-e ADMIN_PASSWORD")[1]
    assert bootstrap.value("environment")["REGISTRATION_TOKEN"] == "generated-registration-token"


def test_a_new_admin_password_token_or_token_lifetime_runs_the_bootstrap_again(evaluate: Evaluate) -> None:
    def triggers(**overrides: object) -> list[object]:
        evaluation = evaluate("prod", overrides={"synapse": overrides}, secrets={"synapse_admin_password": "first-password-1"})
        return evaluation.mocks.named("synapse-bootstrap").value("triggers")

    first = triggers()
    assert "first-password-1" in first and "generated-registration-token" in first
    limited = evaluate("prod", overrides={"synapse": {"registration_token_days": 30}}).mocks.named("synapse-bootstrap")
    assert limited.value("environment")["REGISTRATION_TOKEN_DAYS"] == "30"
    assert triggers(registration_token_days=30) != first


def test_no_bootstrap_without_admin_username(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev", overrides={"synapse": {"admin_username": None}})
    assert not any(command.name == "synapse-bootstrap" for command in evaluation.mocks.of_type("command:local:Command"))
    assert "synapse_admin_password" not in evaluation.outputs


def test_wellknown_nginx_serves_both_documents(evaluate: Evaluate) -> None:
    conf = _upload(evaluate("prod"), "synapse-wellknown", "/etc/nginx/conf.d/default.conf")
    assert '{"m.server":"matrix.example.com:443"}' in conf
    assert '{"m.homeserver":{"base_url":"https://matrix.example.com"}}' in conf


def test_registry_mirrors_rewrite_each_image_through_the_mirror_of_its_registry(evaluate: Evaluate) -> None:
    mirrors = {"docker.io": "mirror.example.cn/hub", "quay.io": "mirror.example.cn/quay"}
    evaluation = evaluate("prod", overrides={"images": {"registry_mirrors": mirrors}})
    names = sorted({image.value("name") for image in evaluation.mocks.of_type("docker:index/remoteImage:RemoteImage")})
    assert names == [
        "ghcr.io/google/cadvisor:v0.53.0",
        "mirror.example.cn/hub/certbot/certbot:v3.3.0",
        "mirror.example.cn/hub/grafana/alloy:v1.10.0",
        "mirror.example.cn/hub/grafana/grafana:12.1.0",
        "mirror.example.cn/hub/grafana/loki:3.5.0",
        "mirror.example.cn/hub/library/mysql:8.4.9",
        "mirror.example.cn/hub/library/nginx:1.27.5-alpine",
        "mirror.example.cn/hub/library/postgres:16.10-bookworm",
        "mirror.example.cn/hub/library/redis:7.4.5-bookworm",
        "mirror.example.cn/hub/matrixdotorg/synapse:v1.163.2",
        "mirror.example.cn/hub/oliver006/redis_exporter:v1.74.0-alpine",
        "mirror.example.cn/hub/prom/alertmanager:v0.28.1",
        "mirror.example.cn/hub/prom/blackbox-exporter:v0.27.0",
        "mirror.example.cn/hub/prom/mysqld-exporter:v0.17.2",
        "mirror.example.cn/hub/prom/node-exporter:v1.9.1",
        "mirror.example.cn/hub/prom/prometheus:v3.5.0",
        "mirror.example.cn/quay/minio/minio:RELEASE.2025-04-22T22-12-26Z",
        "mirror.example.cn/quay/prometheuscommunity/postgres-exporter:v0.17.1",
        "registry.example.com/voicegrow/server:1.0.0",
    ]


def test_disabled_synapse_declares_nothing(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"synapse": {"enabled": False}})
    containers = {resource.name for resource in evaluation.mocks.of_type("docker:index/container:Container")}
    assert containers and not {name for name in containers if name.startswith("synapse")}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_exports_server_name_client_url_and_wellknown_urls(evaluate: Evaluate, stack: str) -> None:
    evaluation = evaluate(stack)
    assert evaluation.output("synapse_server_name")[0]
    assert evaluation.output("synapse_client_url")[0].startswith("http")
    urls, _ = evaluation.output("synapse_wellknown_urls")
    assert urls["server"].endswith("/.well-known/matrix/server")
    assert urls["client"].endswith("/.well-known/matrix/client")


def test_client_url_uses_https_when_tls_is_on(evaluate: Evaluate) -> None:
    assert evaluate("prod").output("synapse_client_url") == ("https://matrix.example.com/", False)


def test_admin_password_and_registration_token_are_exported_as_secrets(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert evaluation.output("synapse_admin_password") == ("generated-admin-password", True)
    assert evaluation.output("synapse_registration_token") == ("generated-registration-token", True)


def test_no_plain_output_carries_a_secret_value(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    for name in evaluation.outputs:
        value, secret = evaluation.output(name)
        if not secret:
            assert "generated-" not in str(value), name


def test_synapse_hands_its_data_volume_to_its_user_before_starting(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    script = evaluation.mocks.named("synapse-files").value("entrypoints")[-1]
    assert "find /data \\! -user 991 -exec chown 991:991 {} +" in script
    assert "synapse-files-id" in {label["value"] for label in evaluation.container("synapse").value("labels")}


# --- retention ------------------------------------------------------------------------------------


def test_message_retention_is_off_by_default(evaluate: Evaluate) -> None:
    assert "retention" not in _homeserver(evaluate("prod"))


def test_message_retention_renders_synapses_default_policy(evaluate: Evaluate) -> None:
    overrides = {"synapse": {"retention": {"enabled": True, "max_lifetime": "180d", "min_lifetime": "1d"}}}
    assert _homeserver(evaluate("prod", overrides=overrides))["retention"] == {
        "enabled": True,
        "default_policy": {"max_lifetime": "180d", "min_lifetime": "1d"},
    }


def test_media_is_kept_unless_a_lifetime_is_set(evaluate: Evaluate) -> None:
    assert "media_retention" not in _homeserver(evaluate("prod"))


def test_media_lifetimes_render_synapses_media_retention(evaluate: Evaluate) -> None:
    overrides = {"synapse": {"media_retention": {"local_media_lifetime": "365d", "remote_media_lifetime": "90d"}}}
    assert _homeserver(evaluate("prod", overrides=overrides))["media_retention"] == {
        "local_media_lifetime": "365d",
        "remote_media_lifetime": "90d",
    }


@pytest.mark.parametrize("key", ["retention.max_lifetime", "media_retention.remote_media_lifetime"])
def test_a_lifetime_that_is_not_a_synapse_duration_is_refused_naming_the_key(evaluate: Evaluate, key: str) -> None:
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=rf"selfhosted:synapse\.{key}.*like '30d'"):
        evaluate("prod", overrides={"synapse": {section: {name: "three months"}}})
