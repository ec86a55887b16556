"""Secret values the deployed software would refuse are rejected before any resource is declared."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError
from tests.certificates import operator_tls_secrets, proxied_hosts
from tests.program import STACKS, run_program
from tests.unit.mocks import RecordingMocks

FILES_MODE = {"tls": "files"}
OFFSITE = {"backup": {"offsite": {"enabled": True, "remote": "offsite:backups"}}}
RCLONE = "[offsite]\ntype = sftp\nhost = backup.example.com\n"


def _rejection(secrets: dict[str, str], overrides: dict[str, Any] | None = None) -> str:
    mocks = RecordingMocks()
    with pytest.raises(ConfigError) as error:
        run_program(mocks, "prod", preview=False, overrides=overrides, secrets=secrets)
    assert mocks.declared == [], "resources were declared before the secrets were checked"
    return str(error.value)


def _prod_tls(**changes: str) -> dict[str, str]:
    return {**operator_tls_secrets(proxied_hosts("prod")), **changes}


BAD_SECRETS = [
    pytest.param({"minio_root_user": "ab"}, None, "selfhosted:minio_root_user must be at least 3 characters", id="minio-user-short"),
    pytest.param({"minio_root_user": "ops:team"}, None, "selfhosted:minio_root_user must be at least 3 characters (MinIO's rule) and contain no ':'", id="minio-user-colon"),
    pytest.param({"minio_root_password": "short"}, None, "selfhosted:minio_root_password must be at least 12 characters (a password)", id="minio-password-short"),
    pytest.param({"minio_root_password": "long-enough:but-colon"}, None, "selfhosted:minio_root_password must contain no ':'", id="minio-password-colon"),
    pytest.param({"redis_password": ""}, None, "selfhosted:redis_password is empty: set a value, or remove it (`pulumi config rm redis_password`) to have one generated", id="empty-password"),
    pytest.param({"tts_api_key": ""}, None, "selfhosted:tts_api_key is empty", id="empty-api-key"),
    pytest.param({"grafana_admin_password": "a"}, None, "selfhosted:grafana_admin_password must be at least 12 characters (a password)", id="short-password"),
    pytest.param({"synapse_macaroon_secret_key": "k" * 31}, None, "selfhosted:synapse_macaroon_secret_key must be at least 32 characters (a signing key)", id="short-signing-key"),
    pytest.param({"synapse_registration_token": "letmein"}, None, "selfhosted:synapse_registration_token must be at least 16 characters (a registration token)", id="short-token"),
    pytest.param({"synapse_registration_token": "let me in"}, None, "selfhosted:synapse_registration_token must be 1 to 64 of the characters", id="token-characters"),
    pytest.param({"synapse_registration_token": "t" * 65}, None, "selfhosted:synapse_registration_token must be 1 to 64", id="token-length"),
    pytest.param({"postgres_password": " padded "}, None, "selfhosted:postgres_password must be one line of printable characters without surrounding spaces", id="surrounding-spaces"),
    pytest.param({"redis_password": "two\nlines"}, None, "selfhosted:redis_password must be one line", id="line-break"),
    pytest.param({"tls_certificate": "CERT", "tls_private_key": "KEY"}, FILES_MODE, "selfhosted:tls_certificate must be a PEM certificate chain", id="certificate-not-pem"),
    pytest.param(None, FILES_MODE, "selfhosted:tls_private_key must be an unencrypted PEM private key", id="key-not-pem"),
    pytest.param(None, FILES_MODE, "selfhosted:tls_private_key is not the key of tls_certificate's first certificate", id="key-mismatch"),
    pytest.param(None, FILES_MODE, "selfhosted:tls_certificate expired on", id="certificate-expired"),
    pytest.param(None, FILES_MODE, "selfhosted:tls_certificate does not name api.voicegrow.example.com", id="host-not-covered"),
    pytest.param({"backup_rclone_config": "type = sftp\n"}, OFFSITE, "selfhosted:backup_rclone_config must be an rclone.conf", id="rclone-not-ini"),
    pytest.param({"backup_rclone_config": "[elsewhere]\ntype = sftp\n"}, OFFSITE, "selfhosted:backup_rclone_config has no [offsite] section, which backup.offsite.remote 'offsite:backups' names", id="rclone-remote-missing"),
    pytest.param({"backup_rclone_config": "[offsite]\nhost = backup.example.com\n"}, OFFSITE, "selfhosted:backup_rclone_config's [offsite] section needs a 'type =' line", id="rclone-remote-untyped"),
    pytest.param({"backup_rclone_config": RCLONE + "[offsite-crypt]\ntype = crypt\n"}, OFFSITE, "selfhosted:backup_rclone_config must not define [offsite-crypt]: the deployment adds that section", id="rclone-crypt-name-taken"),
    pytest.param({"backup_offsite_password": "k" * 31}, None, "selfhosted:backup_offsite_password must be at least 32 characters (an encryption key)", id="short-offsite-password"),
    pytest.param({"backup_offsite_salt": "k" * 12}, None, "selfhosted:backup_offsite_salt must be at least 32 characters (an encryption key)", id="short-offsite-salt"),
]

# Certificates are made per test (they need keys), keyed by the test id.
TLS_CASES = {
    "key-not-pem": lambda: _prod_tls(tls_private_key="-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"),
    "key-mismatch": lambda: _prod_tls(tls_private_key=operator_tls_secrets(["other.example.com"])["tls_private_key"]),
    "certificate-expired": lambda: operator_tls_secrets(proxied_hosts("prod"), days=-2),
    "host-not-covered": lambda: operator_tls_secrets([h for h in proxied_hosts("prod") if h != "api.voicegrow.example.com"]),
}


@pytest.mark.parametrize(("secrets", "overrides", "expected"), BAD_SECRETS)
def test_bad_secret_value_is_rejected_naming_the_key(
    request: pytest.FixtureRequest, secrets: dict[str, str] | None, overrides: dict[str, Any] | None, expected: str
) -> None:
    if secrets is None:
        secrets = TLS_CASES[request.node.callspec.id]()
    assert expected in _rejection(secrets, overrides)


def test_rejection_never_repeats_the_secret_value() -> None:
    message = _rejection({"minio_root_password": "tiny:pw", "redis_password": "hunter2 "})
    assert "tiny:pw" not in message and "hunter2" not in message


def test_every_bad_secret_is_reported_at_once() -> None:
    message = _rejection({"minio_root_user": "ab", "synapse_registration_token": "let me in"})
    assert "minio_root_user" in message and "synapse_registration_token" in message


@pytest.mark.parametrize("stack", STACKS)
def test_a_certificate_for_the_proxied_hosts_is_accepted(stack: str) -> None:
    run_program(RecordingMocks(), stack, preview=False, overrides=FILES_MODE, secrets=operator_tls_secrets(proxied_hosts(stack)))


def test_a_wildcard_certificate_covers_one_label() -> None:
    wildcards = operator_tls_secrets(["example.com", "*.example.com", "*.voicegrow.example.com"])
    run_program(RecordingMocks(), "prod", preview=False, overrides=FILES_MODE, secrets=wildcards)
    too_broad = operator_tls_secrets(["example.com", "*.example.com"])
    assert "does not name ws.voicegrow.example.com, api.voicegrow.example.com" in _rejection(too_broad, FILES_MODE)


def test_minio_credentials_at_the_limits_are_accepted() -> None:
    run_program(RecordingMocks(), "prod", preview=False, secrets={"minio_root_user": "ops", "minio_root_password": "p@ss/w0rd-12"})


def test_secrets_at_their_minimum_lengths_are_accepted() -> None:
    run_program(
        RecordingMocks(),
        "prod",
        preview=False,
        secrets={"redis_password": "p" * 12, "synapse_form_secret": "k" * 32, "synapse_registration_token": "t" * 16},
    )


def test_offsite_copy_with_its_remote_configured_is_accepted() -> None:
    run_program(RecordingMocks(), "prod", preview=False, overrides=OFFSITE, secrets={"backup_rclone_config": RCLONE})
