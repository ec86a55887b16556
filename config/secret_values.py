"""Checks on the values of secret settings, before any resource is declared.

Each check catches a value the deployed software would refuse only after the deploy has begun
(MinIO refusing to start, Synapse refusing a registration token, nginx refusing a key that does
not match its certificate), leaving a half-deployed stack. Messages never repeat the value.
"""

from __future__ import annotations

import configparser
import datetime
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from config.models import OFFSITE_CRYPT_REMOTE, StackSettings

MULTI_LINE_SECRETS = ("tls_certificate", "tls_private_key", "backup_rclone_config", "firewall_ssh_private_key")
# Synapse's admin API accepts registration tokens of these characters, up to 64 of them.
REGISTRATION_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
# The shortest value accepted per kind of secret: a password someone may guess at over the
# network (12), a key that signs tokens or authenticates processes (32; Synapse generates 50), a
# token that lets a stranger register (16). Generated values are 32 letters and digits.
PASSWORD_KEYS = (
    "postgres_password", "synapse_admin_password", "synapse_redis_password", "mysql_root_password",
    "mysql_password", "redis_password", "minio_root_password", "minio_app_password", "grafana_admin_password",
)
SIGNING_KEYS = (
    "synapse_macaroon_secret_key", "synapse_form_secret", "synapse_registration_shared_secret", "synapse_replication_secret",
)
# The offsite copies' keys guard every archive wherever the remote is: as long as a signing key.
ENCRYPTION_KEYS = ("backup_offsite_password", "backup_offsite_salt")
MINIMUM_LENGTHS: dict[str, tuple[int, str]] = {
    **{key: (12, "a password") for key in PASSWORD_KEYS},
    **{key: (32, "a signing key") for key in SIGNING_KEYS},
    **{key: (32, "an encryption key") for key in ENCRYPTION_KEYS},
    "synapse_registration_token": (16, "a registration token"),
}


def secret_value_problems(project: str, settings: StackSettings, values: dict[str, str | None]) -> list[str]:
    """Every problem with the operator's secret values, one line per key, naming the fix."""
    problems = []
    for key, value in values.items():
        if value is None:
            continue
        if not value.strip():
            problems.append(f"{key} is empty: set a value, or remove it (`pulumi config rm {key}`)" + (
                " to have one generated" if key in MINIMUM_LENGTHS else ""))
            continue
        if key not in MULTI_LINE_SECRETS and (value != value.strip() or not value.isprintable()):
            problems.append(f"{key} must be one line of printable characters without surrounding spaces")
        minimum, kind = MINIMUM_LENGTHS.get(key, (0, ""))
        if len(value) < minimum:
            problems.append(
                f"{key} must be at least {minimum} characters ({kind}): set a longer one "
                f"(e.g. `openssl rand -hex {minimum // 2 + 4}`), or remove it to have one generated"
            )
    problems += _minio_problems(values.get("minio_root_user"), values.get("minio_root_password"))
    token = values.get("synapse_registration_token")
    if token is not None and not REGISTRATION_TOKEN.match(token):
        problems.append(
            "synapse_registration_token must be 1 to 64 of the characters A-Z a-z 0-9 . _ ~ - (Synapse's rule)"
        )
    if settings.proxy.enabled and settings.tls == "files":
        problems += _tls_problems(settings, values.get("tls_certificate"), values.get("tls_private_key"))
    for key in ("alert_dingtalk_url", "alert_webhook_url"):
        url = values.get(key)
        if url is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", url):
            problems.append(f"{key} must be an http(s) URL like 'https://alerts.example.com/hook'")
    ssh_key = values.get("firewall_ssh_private_key")
    if settings.firewall.enabled and ssh_key is not None:
        problems += _ssh_key_problems(ssh_key)
    rclone_config = values.get("backup_rclone_config")
    if settings.backup.enabled and settings.backup.offsite.enabled and rclone_config is not None:
        problems += _rclone_problems(settings.backup.offsite.remote, rclone_config)
    return [f"{project}:{problem}" for problem in problems]


def _ssh_key_problems(key: str) -> list[str]:
    data = key.encode()
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            serialization.load_ssh_private_key(data, None)
        else:
            serialization.load_pem_private_key(data, None)
    except TypeError:
        return ["firewall_ssh_private_key must not be encrypted: the deploy has no passphrase for it (or leave it unset and use the SSH agent)"]
    except ValueError:
        return ["firewall_ssh_private_key must be a private key file's content (-----BEGIN OPENSSH PRIVATE KEY----- ...)"]
    return []


def _minio_problems(user: str | None, password: str | None) -> list[str]:
    problems = []
    # mc reads MC_HOST_<alias>=http://USER:PASSWORD@HOST without decoding: the user ends at the
    # first ':', and a ':' in the password starts a session token.
    if user is not None and (len(user) < 3 or ":" in user):
        problems.append("minio_root_user must be at least 3 characters (MinIO's rule) and contain no ':'")
    if password is not None and ":" in password:
        problems.append("minio_root_password must contain no ':'")
    return problems


def _tls_problems(settings: StackSettings, certificate_pem: str | None, key_pem: str | None) -> list[str]:
    if certificate_pem is None or key_pem is None:
        return []  # the loader reports missing secrets
    try:
        chain = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        return ["tls_certificate must be a PEM certificate chain (-----BEGIN CERTIFICATE----- ...), leaf first"]
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        return ["tls_private_key must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY----- ...)"]
    leaf = chain[0]
    problems = []
    public_format = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*public_format) != leaf.public_key().public_bytes(*public_format):
        problems.append("tls_private_key is not the key of tls_certificate's first certificate (the leaf)")
    if leaf.not_valid_after_utc <= datetime.datetime.now(datetime.timezone.utc):
        problems.append(f"tls_certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}: set a current one")
    uncovered = [host for host in settings.proxied_hosts if not _certificate_covers(leaf, host)]
    if uncovered:
        problems.append(f"tls_certificate does not name {', '.join(uncovered)}: the proxy serves it for every host")
    return problems


def _certificate_covers(certificate: x509.Certificate, host: str) -> bool:
    """Whether the certificate's DNS names cover `host` (one wildcard label allowed)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    for name in names.get_values_for_type(x509.DNSName):
        if name.lower() == host.lower():
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1].lower() == name[2:].lower():
            return True
    return False


def _rclone_problems(remote: str, rclone_config: str) -> list[str]:
    remote_name = remote.split(":", 1)[0]
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(rclone_config)
    except configparser.Error:
        return ["backup_rclone_config must be an rclone.conf (INI sections like [offsite] with type = ...)"]
    if not parser.has_section(remote_name):
        return [f"backup_rclone_config has no [{remote_name}] section, which backup.offsite.remote '{remote}' names"]
    if not parser.has_option(remote_name, "type"):
        return [f"backup_rclone_config's [{remote_name}] section needs a 'type =' line (e.g. type = s3)"]
    if parser.has_section(OFFSITE_CRYPT_REMOTE):
        return [
            f"backup_rclone_config must not define [{OFFSITE_CRYPT_REMOTE}]: the deployment adds that section "
            "(the encryption of backup.offsite); rename yours"
        ]
    return []
