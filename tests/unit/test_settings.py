"""Settings validation: defaults per environment and profile, and a named error for each bad input."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, resolve_settings
from tests.unit.conftest import Evaluate
from tests.unit.mocks import RecordingMocks
from tests.stack_config import ALERT_RECEIVERS

SYNAPSE = {"server_name": "example.com", "admin_username": "admin"}


def _settings(stack: str = "prod", **raw: Any) -> Any:
    raw.setdefault("synapse", SYNAPSE)
    raw.setdefault("proxy", {"acme_email": "ops@example.com"})
    raw.setdefault("monitoring", ALERT_RECEIVERS)
    return resolve_settings("selfhosted", stack, raw)


def _problems(stack: str = "prod", **raw: Any) -> str:
    with pytest.raises(ConfigError) as error:
        _settings(stack, **raw)
    return str(error.value)


BAD_INPUTS = [
    pytest.param({"environment": "production"}, "selfhosted:environment must be one of dev, test, staging, prod", id="environment"),
    pytest.param({"profile": "huge"}, "selfhosted:profile must be one of small, medium", id="profile"),
    pytest.param({"synapse": {**SYNAPSE, "server_name": "Matrix_Example"}}, "selfhosted:synapse.server_name must be a lower-case DNS name", id="server-name"),
    pytest.param({"synapse": {"admin_username": "admin"}}, "selfhosted:synapse.server_name is required", id="server-name-missing"),
    pytest.param({"synapse": {**SYNAPSE, "http_port": 70000}}, "selfhosted:synapse.http_port", id="port-range"),
    pytest.param({"synapse": {**SYNAPSE, "http_port": "eighty"}}, "selfhosted:synapse.http_port", id="port-type"),
    pytest.param({"synapse": {**SYNAPSE, "registration": "anyone"}}, "selfhosted:synapse.registration", id="registration"),
    pytest.param({"synapse": {**SYNAPSE, "admin_username": "@admin:example.com"}}, "selfhosted:synapse.admin_username must be a Matrix user name", id="admin-username"),
    pytest.param({"synapse": {"server_name": "example.com", "registration": "token"}}, "selfhosted:synapse.admin_username is required when registration is 'token'", id="token-needs-admin"),
    pytest.param({"synapse": {**SYNAPSE, "max_upload_size": "8 MB"}}, "selfhosted:synapse.max_upload_size must be like '8M'", id="upload-size"),
    pytest.param({"synapse": {**SYNAPSE, "web_client_location": "element.example.com"}}, "selfhosted:synapse.web_client_location", id="web-client-url"),
    pytest.param({"synapse": {**SYNAPSE, "http_bind": "localhost"}}, "selfhosted:synapse.http_bind must be an IP address", id="bind-address"),
    pytest.param({"synapse": {**SYNAPSE, "public_baseurl": "matrix.example.com"}}, "selfhosted:synapse.public_baseurl must be an http(s) URL", id="baseurl"),
    pytest.param({"synapse": {**SYNAPSE, "sever_name": "x.org"}}, "selfhosted:synapse.sever_name is not a known setting", id="typo-in-object"),
    pytest.param({"resources": {"postgres": {"memory": "lots"}}}, "selfhosted:resources.postgres.memory must be like '512M' or '1.5G', got 'lots'", id="memory"),
    pytest.param({"resources": {"postgres": {"cpus": 0}}}, "selfhosted:resources.postgres.cpus", id="cpus"),
    pytest.param({"resources": {"wellknown": {"cpus": 0.05}}}, "selfhosted:resources.wellknown.cpus must be a CPU count the Docker provider stores unchanged: 0.05 is stored as 0.1", id="cpus-not-round-tripping"),
    pytest.param({"resources": {"postgress": {"memory": "1G"}}}, "selfhosted:resources.postgress is not a container role", id="role"),
    pytest.param({"resources": {"postgres": {"memory": "256M", "reservation": "512M"}}}, "selfhosted:resources.postgres.reservation must not exceed memory", id="reservation"),
    pytest.param({"images": {"postgres": "Postgres 16"}}, "selfhosted:images.postgres must be an image reference", id="image-ref"),
    pytest.param({"images": {"synapse": "matrixdotorg/synapse:latest"}}, "selfhosted:images.synapse must be pinned to a version in prod", id="latest-in-prod"),
    pytest.param({"images": {"nginx": "nginx"}}, "selfhosted:images.nginx must be pinned to a version in prod", id="untagged-in-prod"),
    pytest.param({"voicegrow": {"enabled": True, "server_image": "registry.example.com/voicegrow/server:latest"}}, "selfhosted:voicegrow.server_image must be pinned to a version in prod", id="latest-server-in-prod"),
    pytest.param({"images": {"registry_mirrors": {"docker.io": "https://mirror.example.cn"}}}, "selfhosted:images.registry_mirrors must map registry hosts to mirrors: values must be a mirror's host", id="mirror-with-scheme"),
    pytest.param({"images": {"registry_mirrors": {"https://quay.io": "mirror.example.cn/quay"}}}, "selfhosted:images.registry_mirrors must map registry hosts to mirrors: keys must be registry hosts", id="mirror-key-with-scheme"),
    pytest.param({"images": {"registry_mirrors": {"index.docker.io": "mirror.example.cn/hub"}}}, "key 'index.docker.io' is Docker Hub: write it as 'docker.io'", id="mirror-key-docker-hub-alias"),
    pytest.param({"images": {"registry_mirrors": "mirror.example.cn/hub"}}, "selfhosted:images.registry_mirrors", id="mirrors-not-a-mapping"),
    pytest.param({"images": {"platform": "arm64"}}, "selfhosted:images.platform must be a platform like 'linux/amd64'", id="platform"),
    pytest.param({"logging": {"max_file": 0}}, "selfhosted:logging.max_file", id="log-files"),
    pytest.param({"docker": {"host": "vps.example.com"}}, "selfhosted:docker.host", id="docker-host"),
    pytest.param({"tls": "letsencrypt"}, "selfhosted:tls", id="tls-mode"),
    pytest.param({"proxy": {"acme_email": "ops@example.com", "acme_directory": "http://ca.example/dir"}}, "selfhosted:proxy.acme_directory must be an https:// URL", id="acme-directory-scheme"),
    pytest.param({"proxy": {"acme_email": "ops@example.com", "acme_directory": "https://ca.example/dir", "acme_staging": True}}, "selfhosted:proxy.acme_staging selects Let's Encrypt's staging directory", id="acme-directory-and-staging"),
    pytest.param({"proxy": {"acme_email": "ops@example.com", "acme_directory_ca": "-----BEGIN CERTIFICATE-----"}}, "selfhosted:proxy.acme_directory_ca needs acme_directory", id="acme-ca-alone"),
    pytest.param({"proxy": {"acme_email": "ops@example.com", "acme_directory": "https://ca.example/dir", "acme_directory_ca": "not a certificate"}}, "selfhosted:proxy.acme_directory_ca must be PEM certificates", id="acme-ca-not-pem"),
    pytest.param({"tls": "off", "proxy": {"federation_port": 8448}}, "selfhosted:proxy.federation_port needs tls other than 'off'", id="federation-without-tls"),
    pytest.param({"prefix": "My Stack"}, "selfhosted:prefix", id="prefix"),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_INPUTS)
def test_bad_input_is_rejected_naming_the_key(raw: dict[str, Any], expected: str) -> None:
    assert expected in _problems(**raw)


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(synapse={**SYNAPSE, "server_name": "Bad", "http_port": 0, "typo": 1})
    assert "server_name" in problems and "http_port" in problems and "typo" in problems


def test_environment_defaults_to_the_stack_name() -> None:
    assert _settings("staging").environment == "staging"


def test_unknown_stack_name_needs_an_explicit_environment() -> None:
    assert "pulumi config set environment" in _problems("feature-x")
    assert _settings("feature-x", environment="dev").environment == "dev"


@pytest.mark.parametrize(
    ("stack", "log_level", "tls", "protect"),
    [("dev", "INFO", "off", False), ("test", "INFO", "self-signed", False), ("staging", "WARNING", "acme", True), ("prod", "WARNING", "acme", True)],
)
def test_environment_defaults_follow_the_environment_table(stack: str, log_level: str, tls: str, protect: bool) -> None:
    settings = _settings(stack)
    assert (settings.synapse.log_level, settings.tls, settings.protect_data) == (log_level, tls, protect)


def test_prod_defaults_to_token_registration() -> None:
    assert _settings("prod").synapse.registration == "token"


def test_dev_defaults_to_closed_registration() -> None:
    assert _settings("dev", synapse={"server_name": "matrix.localhost"}).synapse.registration == "closed"


def test_latest_is_allowed_outside_prod() -> None:
    assert _settings("dev", images={"nginx": "nginx:latest"}).images.nginx == "nginx:latest"


def test_memory_accepts_gigabytes_with_a_fraction() -> None:
    assert _settings(resources={"synapse": {"memory": "2.5G"}}).limits("synapse").memory_mb == 2560


def test_lowering_memory_below_the_profile_reservation_lowers_the_reservation() -> None:
    limits = _settings(resources={"wellknown": {"memory": "8M"}}).limits("wellknown")
    assert (limits.memory_mb, limits.reservation_mb) == (8, 8)


def test_docker_hub_mirror_keeps_references_that_name_another_registry() -> None:
    settings = _settings(images={"registry_mirrors": {"docker.io": "mirror.example.cn"}, "synapse": "ghcr.io/element-hq/synapse:v1.163.2"})
    assert settings.images.reference("synapse") == "ghcr.io/element-hq/synapse:v1.163.2"
    assert settings.images.reference("postgres") == "mirror.example.cn/library/postgres:16.10-bookworm"


def test_unknown_top_level_key_fails_before_any_resource() -> None:
    mocks = RecordingMocks()
    from tests.program import run_program

    with pytest.raises(ConfigError, match=r"selfhosted:synapse_admin_pasword is not a known setting"):
        run_program(mocks, "prod", preview=False, overrides={"synapse_admin_pasword": "x"})
    assert mocks.declared == []


def test_secret_set_in_plain_text_is_rejected(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:postgres_password is a secret: set it with `pulumi config set --secret"):
        evaluate("prod", overrides={"postgres_password": "hunter2"})


def test_object_setting_given_as_text_is_rejected(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:images must be an object"):
        evaluate("prod", overrides={"images": "postgres:16"})


def test_synapse_debug_logging_is_available_on_request() -> None:
    assert _settings("dev", synapse={"server_name": "matrix.localhost", "log_level": "DEBUG"}).synapse.log_level == "DEBUG"


def test_staging_refuses_an_unpinned_image_and_accepts_a_digest() -> None:
    assert "images.nginx must be pinned to a version in staging" in _problems("staging", images={"nginx": "nginx:latest"})
    digest = "nginx@sha256:" + "0" * 64
    assert _settings("staging", images={"nginx": digest}).images.nginx == digest


def test_test_and_dev_may_run_latest() -> None:
    assert _settings("test", images={"nginx": "nginx:latest"}).images.nginx == "nginx:latest"
