"""VoiceGrowStack under mocks: data services stay private, secrets are generated, replicas per environment."""

from __future__ import annotations

import re
from typing import Any

import pytest

from config import ConfigError
from config.profiles import LARGE, SMALL
from tests.unit.conftest import Evaluate, Evaluation, Registration

VOICEGROW_STACKS = ("test", "staging", "prod")
DATA_SERVICES = ("voicegrow-mysql", "voicegrow-redis", "voicegrow-minio")
MODES = [pytest.param(False, id="up"), pytest.param(True, id="preview")]
ENABLED = {"voicegrow": {"enabled": True, "server_image": "registry.example.com/voicegrow/server:1.0.0"}}


def _env(evaluation: Evaluation, container: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in evaluation.container(container).value("envs"))


def _servers(evaluation: Evaluation) -> list[Any]:
    containers = evaluation.mocks.of_type("docker:index/container:Container")
    return sorted((c for c in containers if c.name.startswith("voicegrow-server-")), key=lambda c: c.name)


def _upload(evaluation: Evaluation, container: str, path: str) -> str:
    return evaluation.mocks.files(container)[path]


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", VOICEGROW_STACKS)
def test_every_voicegrow_stack_declares_data_services_and_servers(evaluate: Evaluate, stack: str, preview: bool) -> None:
    evaluation = evaluate(stack, preview=preview)
    for name in DATA_SERVICES:
        assert evaluation.container(name).value("restart") == "unless-stopped"
    assert _servers(evaluation)


def test_dev_has_no_voicegrow_unless_enabled(evaluate: Evaluate) -> None:
    assert not _servers(evaluate("dev"))
    assert len(_servers(evaluate("dev", overrides=ENABLED))) == 1


@pytest.mark.parametrize(("stack", "replicas"), [("dev", 1), ("test", 1), ("staging", 2), ("prod", 2)])
def test_server_replicas_follow_the_environment(evaluate: Evaluate, stack: str, replicas: int) -> None:
    assert len(_servers(evaluate(stack, overrides=ENABLED))) == replicas


def test_replica_count_can_be_raised(evaluate: Evaluate) -> None:
    assert len(_servers(evaluate("prod", overrides={"voicegrow": {"replicas": 3}}))) == 3


@pytest.mark.parametrize("stack", VOICEGROW_STACKS)
@pytest.mark.parametrize("service", DATA_SERVICES)
def test_data_ports_are_not_published(evaluate: Evaluate, stack: str, service: str) -> None:
    assert not evaluate(stack).container(service).value("ports")


def test_dev_can_publish_data_ports_on_loopback_only(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev", overrides={"voicegrow": {**ENABLED["voicegrow"], "publish_data_ports": True}})
    assert evaluation.container("voicegrow-mysql").value("ports") == [{"internal": 3306, "external": 3306, "ip": "127.0.0.1"}]
    assert {p["ip"] for p in evaluation.container("voicegrow-minio").value("ports")} == {"127.0.0.1"}


def test_publishing_data_ports_outside_dev_is_refused(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="voicegrow.publish_data_ports is allowed only in dev"):
        evaluate("prod", overrides={"voicegrow": {"publish_data_ports": True}})


def test_each_replica_publishes_ws_and_http_on_loopback_with_its_own_ports(evaluate: Evaluate) -> None:
    ports = [server.value("ports") for server in _servers(evaluate("prod"))]
    assert ports == [
        [{"internal": 4399, "external": 4399, "ip": "127.0.0.1"}, {"internal": 8000, "external": 8000, "ip": "127.0.0.1"}],
        [{"internal": 4399, "external": 4400, "ip": "127.0.0.1"}, {"internal": 8000, "external": 8001, "ip": "127.0.0.1"}],
    ]


def test_each_replica_is_reachable_by_its_own_alias(evaluate: Evaluate) -> None:
    aliases = [server.value("networksAdvanced")[0]["aliases"] for server in _servers(evaluate("prod"))]
    assert aliases == [["server-1", "server"], ["server-2", "server"]]


def test_upstreams_name_every_replica(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert evaluation.output("voicegrow_ws_upstreams")[0] == ["server-1:4399", "server-2:4399"]
    assert evaluation.output("voicegrow_http_upstreams")[0] == ["server-1:8000", "server-2:8000"]


@pytest.mark.parametrize(("stack", "debug", "level"), [("dev", "true", "DEBUG"), ("test", "false", "INFO"), ("staging", "false", "WARNING"), ("prod", "false", "WARNING")])
def test_debug_and_log_level_follow_the_environment(evaluate: Evaluate, stack: str, debug: str, level: str) -> None:
    env = _env(evaluate(stack, overrides=ENABLED), "voicegrow-server-1")
    assert (env["DEBUG"], env["LOG_LEVEL"]) == (debug, level)


def test_server_environment_has_the_guides_variables(evaluate: Evaluate) -> None:
    env = _env(evaluate("prod"), "voicegrow-server-1")
    expected = {
        "SERVER_HOST": "0.0.0.0", "WS_PORT": "4399", "HTTP_PORT": "8000", "WORKERS": "1",
        "ASR_MODEL_SIZE": "small", "ASR_DEVICE": "cpu", "ASR_COMPUTE_TYPE": "int8", "ASR_LANGUAGE": "zh", "ASR_TIMEOUT": "30",
        "TTS_BASE_URL": "http://ai-manager:8000", "TTS_VOICE_ZH": "zh-CN-Neural2-C", "TTS_VOICE_EN": "en-US-Neural2-C",
        "TTS_SPEAKING_RATE": "0.9", "TTS_PITCH": "0.0", "TTS_TIMEOUT": "30",
        "LLM_BASE_URL": "http://ai-manager:8000", "LLM_MODEL": "gemini-2.0-flash-exp", "LLM_MAX_TOKENS": "300",
        "LLM_TEMPERATURE": "0.7", "LLM_TIMEOUT": "30",
        "MYSQL_HOST": "mysql", "MYSQL_PORT": "3306", "MYSQL_DATABASE": "voicegrow", "MYSQL_USER": "voicegrow",
        "REDIS_HOST": "redis", "REDIS_PORT": "6379",
        "MINIO_ENDPOINT": "minio:9000", "MINIO_BUCKET": "voicegrow", "MINIO_SECURE": "false",
    }
    assert {name: env[name] for name in expected} == expected


def test_server_gets_the_generated_credentials_of_each_service(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    server = _env(evaluation, "voicegrow-server-1")
    mysql = evaluation.mocks.files("voicegrow-mysql")
    minio = evaluation.mocks.files("voicegrow-minio")
    assert server["MYSQL_PASSWORD"] == mysql["/run/secrets/password"] == "generated-mysql-password"
    assert server["REDIS_PASSWORD"] == "generated-redis-password"
    assert 'requirepass "generated-redis-password"' in _upload(evaluation, "voicegrow-redis", "/usr/local/etc/redis/redis.conf")
    # Not MinIO's root: a user of its own, made in MinIO with the bucket's policy before the servers start.
    assert (server["MINIO_ACCESS_KEY"], server["MINIO_SECRET_KEY"]) == ("voicegrow-server", "generated-minio-app-password")
    assert server["MINIO_SECRET_KEY"] != minio["/run/secrets/root_password"]
    account = evaluation.mocks.named("voicegrow-bucket-user", "command:local:Command")
    assert account.value("environment")["APP_SECRET_KEY"] == "generated-minio-app-password"
    assert "generated-minio-app-password" not in account.value("create")
    assert "mc admin policy attach local voicegrow-bucket --user voicegrow-server" in account.value("create")


def test_no_seed_default_password_is_used(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    for name in DATA_SERVICES + ("voicegrow-server-1",):
        envs = " ".join([*(evaluation.container(name).value("envs") or []), *evaluation.mocks.files(name).values()])
        for weak in ("root123", "voicegrow123", "your_secure_password_here"):
            assert weak not in envs


def test_operator_secrets_replace_generated_ones(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", secrets={"mysql_root_password": "chosen-root-password", "redis_password": "chosen-redis"})
    assert evaluation.mocks.files("voicegrow-mysql")["/run/secrets/root_password"] == "chosen-root-password"
    assert _env(evaluation, "voicegrow-server-1")["REDIS_PASSWORD"] == "chosen-redis"


def test_llm_shares_tts_keys_unless_set(evaluate: Evaluate) -> None:
    shared = _env(evaluate("prod", secrets={"tts_api_key": "ak_1", "tts_secret_key": "sk_1"}), "voicegrow-server-1")
    assert (shared["LLM_API_KEY"], shared["LLM_SECRET_KEY"]) == ("ak_1", "sk_1")
    own = _env(evaluate("prod", secrets={"tts_api_key": "ak_1", "tts_secret_key": "sk_1", "llm_api_key": "ak_2"}), "voicegrow-server-1")
    assert (own["LLM_API_KEY"], own["LLM_SECRET_KEY"]) == ("ak_2", "sk_1")


@pytest.mark.parametrize("container", DATA_SERVICES)
def test_data_services_get_their_credentials_only_as_secret_files(evaluate: Evaluate, container: str) -> None:
    evaluation = evaluate("prod")
    assert not any("generated-" in variable for variable in evaluation.container(container).value("envs") or [])
    assert evaluation.mocks.named(f"{container}-files").is_secret("uploads")


@pytest.mark.parametrize(
    ("container", "variables"),
    [
        ("voicegrow-mysql", {"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/root_password", "MYSQL_PASSWORD_FILE": "/run/secrets/password"}),
        ("voicegrow-minio", {"MINIO_ROOT_USER_FILE": "/run/secrets/root_user", "MINIO_ROOT_PASSWORD_FILE": "/run/secrets/root_password"}),
    ],
)
def test_data_services_are_told_where_their_secret_files_are(evaluate: Evaluate, container: str, variables: dict[str, str]) -> None:
    assert variables.items() <= _env(evaluate("prod"), container).items()


def test_server_credentials_are_a_secret_input(evaluate: Evaluate) -> None:
    assert evaluate("prod").container("voicegrow-server-1").is_secret("envs")


def test_server_reads_secret_files_when_it_supports_them(evaluate: Evaluate) -> None:
    keys = {"tts_api_key": "ak_1", "tts_secret_key": "sk_1"}
    evaluation = evaluate("prod", overrides={"voicegrow": {"secret_files": True}}, secrets=keys)
    server = _env(evaluation, "voicegrow-server-1")
    assert not any(value.startswith("generated-") for value in server.values())
    assert server["MYSQL_PASSWORD_FILE"] == "/run/secrets/mysql_password"
    assert evaluation.mocks.files("voicegrow-server-1")["/run/secrets/mysql_password"] == "generated-mysql-password"
    assert {name.removesuffix("_FILE") for name in server if name.endswith("_FILE")} == {
        "TTS_API_KEY", "TTS_SECRET_KEY", "LLM_API_KEY", "LLM_SECRET_KEY",
        "MYSQL_PASSWORD", "REDIS_PASSWORD", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY",
    }


def test_keys_that_are_not_set_are_empty_variables_not_files(evaluate: Evaluate) -> None:
    # An empty file would hold no secret (and Docker refuses an empty secret on Swarm).
    evaluation = evaluate("prod", overrides={"voicegrow": {"secret_files": True}})
    server = _env(evaluation, "voicegrow-server-1")
    for name in ("TTS_API_KEY", "TTS_SECRET_KEY", "LLM_API_KEY", "LLM_SECRET_KEY"):
        assert server[name] == "" and f"{name}_FILE" not in server, name
        assert f"/run/secrets/{name.lower()}" not in evaluation.mocks.files("voicegrow-server-1"), name


def test_redis_config_is_a_secret_file(evaluate: Evaluate) -> None:
    assert evaluate("prod").mocks.named("voicegrow-redis-files").is_secret("uploads")


def test_redis_health_check_authenticates(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert evaluation.container("voicegrow-redis").value("healthcheck")["tests"] == [
        "CMD-SHELL", 'REDISCLI_AUTH="$(cat /usr/local/etc/redis/password)" redis-cli ping | grep -q PONG'
    ]
    assert evaluation.mocks.files("voicegrow-redis")["/usr/local/etc/redis/password"] == "generated-redis-password"
    assert not evaluation.container("voicegrow-redis").value("envs")


def test_mysql_health_check_pings_over_tcp(evaluate: Evaluate) -> None:
    tests = evaluate("prod").container("voicegrow-mysql").value("healthcheck")["tests"]
    assert tests == ["CMD-SHELL", "mysqladmin ping -h 127.0.0.1 --silent"]


def test_minio_health_check_is_the_live_path(evaluate: Evaluate) -> None:
    assert "http://localhost:9000/minio/health/live" in evaluate("prod").container("voicegrow-minio").value("healthcheck")["tests"]


def test_server_health_check_is_the_api_health_path(evaluate: Evaluate) -> None:
    assert "http://localhost:8000/api/v1/health" in evaluate("prod").container("voicegrow-server-1").value("healthcheck")["tests"]


def test_bucket_is_created_idempotently_without_secrets_on_the_command_line(evaluate: Evaluate) -> None:
    bucket = evaluate("prod").mocks.named("voicegrow-bucket")
    assert bucket.value("create") == "docker exec -e MC_HOST_local selfhosted-prod-voicegrow-minio mc mb --ignore-existing local/voicegrow"
    assert bucket.is_secret("environment")


def test_minio_runs_the_server_with_its_console(evaluate: Evaluate) -> None:
    command = evaluate("prod").container("voicegrow-minio").value("command")
    assert command[:4] == ["server", "/data", "--console-address", ":9001"]


def test_minio_keeps_its_certificates_directory_on_tmpfs(evaluate: Evaluate) -> None:
    # MinIO creates it at start, by default in the user's home: read-only here.
    assert evaluate("prod").container("voicegrow-minio").value("command")[-2:] == ["--certs-dir", "/tmp/certs"]


def test_every_data_service_keeps_its_data_on_a_named_volume(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    paths = {name: evaluation.container(name).value("volumes")[0] for name in DATA_SERVICES}
    assert paths["voicegrow-mysql"] == {"volumeName": "selfhosted-prod-voicegrow-mysql", "containerPath": "/var/lib/mysql"}
    assert paths["voicegrow-redis"]["containerPath"] == "/data"
    assert paths["voicegrow-minio"]["containerPath"] == "/data"


def test_servers_mount_models_and_logs(evaluate: Evaluate) -> None:
    volumes = {v["containerPath"] for v in evaluate("prod").container("voicegrow-server-1").value("volumes")}
    assert volumes == {"/app/models", "/app/logs"}


@pytest.mark.parametrize(("stack", "profile"), [("test", SMALL), ("prod", LARGE)])
def test_limits_come_from_the_profile(evaluate: Evaluate, stack: str, profile: Any) -> None:
    evaluation = evaluate(stack)
    for name, role in (("voicegrow-mysql", "mysql"), ("voicegrow-redis", "redis"), ("voicegrow-minio", "minio"), ("voicegrow-server-1", "voicegrow_server")):
        assert evaluation.container(name).value("memory") == profile.limits[role].memory_mb, name
        assert evaluation.container(name).value("cpuShares") == profile.limits[role].cpu_weight, name


def test_large_profile_has_the_guides_limits(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    limits = {name: (evaluation.container(name).value("memory"), evaluation.container(name).value("cpus")) for name in DATA_SERVICES + ("voicegrow-server-1",)}
    # The data services share the CPU by weight; the server's ASR, which takes every core it can, is capped.
    assert limits == {"voicegrow-mysql": (2048, None), "voicegrow-redis": (512, None), "voicegrow-minio": (1024, None), "voicegrow-server-1": (4096, "4.0")}


def test_buffer_pool_is_sized_by_the_profile(evaluate: Evaluate) -> None:
    assert "innodb_buffer_pool_size = 1G" in _upload(evaluate("prod"), "voicegrow-mysql", "/etc/mysql/conf.d/voicegrow.cnf")
    assert "innodb_buffer_pool_size = 256M" in _upload(evaluate("test"), "voicegrow-mysql", "/etc/mysql/conf.d/voicegrow.cnf")


# Server options MySQL 8.4 removed (its "Option and Variable Changes for MySQL 8.4"): it refuses to start with them.
MYSQL_84_REMOVED = {
    "default_authentication_plugin",
    "expire_logs_days",
    "avoid_temporal_upgrade",
    "binlog_transaction_dependency_tracking",
    "admin_ssl",
    "authentication_fido_rp_id",
}


def _mysqld_options(evaluation: Evaluation) -> dict[str, str]:
    section, options = "", {}
    for line in _upload(evaluation, "voicegrow-mysql", "/etc/mysql/conf.d/voicegrow.cnf").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line and section == "mysqld":
            name, _, value = line.partition("=")
            options[name.strip().replace("-", "_")] = value.strip()
    return options


def test_my_cnf_sets_no_option_mysql_84_removed(evaluate: Evaluate) -> None:
    options = {name.removeprefix("loose_") for name in _mysqld_options(evaluate("prod"))}
    assert options and not options & MYSQL_84_REMOVED


def test_redo_log_is_sized_with_the_capacity_option_not_the_deprecated_file_size(evaluate: Evaluate) -> None:
    options = _mysqld_options(evaluate("prod"))
    assert options["loose_innodb_redo_log_capacity"] == "512M"
    assert "innodb_log_file_size" not in options


def test_mysql_native_password_is_not_loaded_by_default(evaluate: Evaluate) -> None:
    assert "loose_mysql_native_password" not in _mysqld_options(evaluate("prod"))


def test_mysql_native_password_can_be_loaded_for_accounts_not_yet_moved(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"voicegrow": {"mysql": {"native_password": True}}})
    assert _mysqld_options(evaluation)["loose_mysql_native_password"] == "ON"


def test_operator_init_sql_is_uploaded(evaluate: Evaluate, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    init = tmp_path / "init.sql"
    init.write_text("CREATE TABLE devices (id INT PRIMARY KEY);\n")
    evaluation = evaluate("prod", overrides={"voicegrow": {"mysql": {"init_sql": str(init)}}})
    assert "CREATE TABLE devices" in _upload(evaluation, "voicegrow-mysql", "/docker-entrypoint-initdb.d/init.sql")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_server_waits_for_the_data_services_and_the_bucket(
    evaluate: Evaluate, registrations: dict[str, Registration], stack: str
) -> None:
    # The data services are declared with wait=True, so depending on them means "after healthy".
    evaluate(stack)
    servers = [name for name in registrations if re.fullmatch(r"voicegrow-server-\d+", name)]
    assert servers == ["voicegrow-server-1", "voicegrow-server-2"]
    for server in servers:
        assert set(DATA_SERVICES) | {"voicegrow-bucket"} <= registrations[server].dependencies, server


def test_data_services_wait_until_healthy(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    for name in DATA_SERVICES:
        assert evaluation.container(name).value("wait") is True, name


def test_server_built_from_source_uses_the_built_image(evaluate: Evaluate, tmp_path: Any) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    evaluation = evaluate("prod", overrides={"voicegrow": {"server_image": None, "server_source": str(tmp_path)}})
    build = evaluation.mocks.named("voicegrow-server-build")
    assert build.value("build")["context"] == str(tmp_path)
    assert build.value("imageName") == "selfhosted-prod-voicegrow-server:local"


def test_the_servers_get_every_gpu_only_when_the_model_runs_on_cuda(evaluate: Evaluate) -> None:
    assert all(server.value("gpus") is None for server in _servers(evaluate("prod")))
    on_gpu = _servers(evaluate("prod", overrides={"voicegrow": {"asr": {"device": "cuda", "model_size": "large", "compute_type": "float16"}}}))
    assert [server.value("gpus") for server in on_gpu] == ["all"] * len(on_gpu)
    assert _env(evaluate("prod", overrides={"voicegrow": {"asr": {"device": "cuda"}}}), "voicegrow-server-1")["ASR_DEVICE"] == "cuda"


def test_a_model_too_large_for_the_servers_memory_is_refused_with_the_numbers(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError) as error:
        evaluate("test", overrides={"voicegrow": {"asr": {"model_size": "large"}}})
    message = str(error.value)
    assert "resources.voicegrow_server.memory (1536 MB) is less than speech recognition needs on the CPU" in message
    assert "'large' has 1550 M parameters x 1 byte(s) (compute_type int8) x 1.5 while recognising + 256 MB for the server = 2581 MB" in message
    assert "set resources.voicegrow_server.memory to at least 2581M" in message
    # Enough memory, or the model on a GPU, passes.
    evaluate("test", overrides={"voicegrow": {"asr": {"model_size": "large"}}, "resources": {"voicegrow_server": {"memory": "2600M"}}})
    evaluate("test", overrides={"voicegrow": {"asr": {"model_size": "large", "device": "cuda"}}})


BAD_VOICEGROW = [
    pytest.param({"server_image": None}, "server_image or server_source is required", id="no-server"),
    pytest.param({"server_source": "/nonexistent"}, "server_image or server_source is required", id="both"),
    pytest.param({"server_image": None, "server_source": "/nonexistent"}, "server_source must be a directory with a Dockerfile", id="source"),
    pytest.param({"replicas": 0}, "selfhosted:voicegrow.replicas", id="replicas"),
    pytest.param({"ws_port": 0}, "selfhosted:voicegrow.ws_port", id="port"),
    pytest.param({"asr": {"model_size": "huge"}}, "selfhosted:voicegrow.asr.model_size", id="asr-model"),
    pytest.param({"asr": {"compute_type": "int4"}}, "selfhosted:voicegrow.asr.compute_type", id="compute-type"),
    pytest.param({"llm": {"temperature": 2.5}}, "selfhosted:voicegrow.llm.temperature", id="temperature"),
    pytest.param({"tts": {"speaking_rate": 5}}, "selfhosted:voicegrow.tts.speaking_rate", id="speaking-rate"),
    pytest.param({"tts": {"pitch": -25}}, "selfhosted:voicegrow.tts.pitch", id="pitch"),
    pytest.param({"mysql": {"init_sql": "missing.sql"}}, "mysql.init_sql must be an existing SQL file", id="init-sql"),
    pytest.param({"bucket": "Voice_Grow"}, "selfhosted:voicegrow.bucket", id="bucket"),
]


@pytest.mark.parametrize(("override", "expected"), BAD_VOICEGROW)
def test_bad_voicegrow_setting_is_rejected_naming_the_key(evaluate: Evaluate, override: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        evaluate("prod", overrides={"voicegrow": override})
