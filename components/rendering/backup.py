"""The backup job's files: the JSON job the backup tool reads, and the credential files it uses."""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from components.images.backup import archives as job_file
from components.rendering import voicegrow as voicegrow_render
from config.models import OFFSITE_CRYPT_REMOTE, BackupSettings, OffsiteSettings

RESTORE_SCRIPT = "scripts/restore.sh"


@dataclass(frozen=True)
class PostgresSource:
    """Synapse's database, as the backup container reaches it on the Synapse network."""

    host: str
    port: int
    user: str
    database: str


@dataclass(frozen=True)
class MysqlSource:
    """VoiceGrow's database, reached with the backup's own account (mysql_backup_account_statements):
    root logs in only inside the MySQL container."""

    host: str
    port: int
    database: str
    user: str = "backup"


@dataclass(frozen=True)
class BucketSource:
    """VoiceGrow's MinIO bucket."""

    endpoint: str
    bucket: str


@dataclass(frozen=True)
class JobTargets:
    """What one stack's backup job covers; None (or False) where the stack lacks the service."""

    postgres: PostgresSource | None
    mysql: MysqlSource | None
    bucket: BucketSource | None
    synapse_data: bool
    configs: bool
    services: dict[str, list[str]]
    """Containers to stop while restoring each part (`synapse`, `mysql`, `media`, `bucket`): the ones that write its data."""
    media_purge: job_file.MediaPurge | None = None
    state_compression: job_file.StateCompression | None = None

    def parts(self) -> list[str]:
        """The parts a restore can bring back one at a time, in restore order."""
        present = {
            "synapse": self.postgres is not None,
            "mysql": self.mysql is not None,
            "media": self.synapse_data,
            "bucket": self.bucket is not None,
        }
        return [part for part, here in present.items() if here]


def offsite_owner(project: str, stack: str) -> str:
    """The name a stack's offsite copies go under: its directory, and the first word of each archive's name."""
    return f"{project}-{stack}"


def offsite_directory(offsite: OffsiteSettings, owner: str) -> str:
    """The stack's own directory under the operator's remote: `offsite:backups` -> `offsite:backups/selfhosted-prod`."""
    return job_file.remote_path(offsite.remote, owner)


def render_job(project: str, stack: str, settings: BackupSettings, targets: JobTargets) -> str:
    """backup.json: schedule, retention and every part's source; it holds no secret."""
    parts = targets.parts()
    postgres, mysql, bucket = targets.postgres, targets.mysql, targets.bucket
    job = job_file.JobDocument(
        stack=stack,
        schedule=settings.schedule,
        timezone=settings.timezone,
        # Only the stack's own parts: another stack's part schedule has nothing to back up here.
        part_schedules={
            part: schedule for part in parts if (schedule := getattr(settings.part_schedules, part)) is not None
        },
        retention={part: job_file.Retention(**getattr(settings.retention, part).model_dump()) for part in parts},
        timeout_seconds=settings.timeout_minutes * 60,
        postgres=job_file.Postgres(host=postgres.host, port=postgres.port, user=postgres.user, database=postgres.database)
        if postgres is not None
        else None,
        mysql=job_file.Mysql(database=mysql.database) if mysql is not None else None,
        synapse_data=Path(job_file.SYNAPSE_DATA_DIR) if targets.synapse_data else None,
        bucket=job_file.Bucket(bucket=bucket.bucket) if bucket is not None else None,
        configs_dir=Path(job_file.CONFIGS_DIR) if targets.configs else None,
        offsite=_offsite(project, stack, settings.offsite) if settings.offsite.enabled else None,
        services={part: targets.services[part] for part in parts},
        metrics_port=job_file.METRICS_PORT,
        media_purge=targets.media_purge,
        state_compression=targets.state_compression if postgres is not None else None,
    )
    return job.to_json()


def _offsite(project: str, stack: str, offsite: OffsiteSettings) -> job_file.Offsite:
    owner = offsite_owner(project, stack)
    directory = offsite_directory(offsite, owner)
    return job_file.Offsite(
        # Encrypted: through the crypt remote that wraps the stack's directory (render_offsite_crypt).
        remote=f"{OFFSITE_CRYPT_REMOTE}:" if offsite.encrypt else directory,
        directory=directory,
        encrypted=offsite.encrypt,
        owner=owner,
        # Where every stack wrote its archives, unencrypted, before each had a directory of its own.
        legacy_remote=offsite.remote,
        keep_days=offsite.keep_days,
        keep_count=offsite.keep_count,
    )


# rclone's fixed, public key for obscuring passwords in its config (lib/obscure in rclone's source).
_RCLONE_OBSCURE_KEY = bytes.fromhex("9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638")


def rclone_obscure(value: str) -> str:
    """`value` as `rclone obscure` writes it: AES-256-CTR under rclone's public key, IV first, base64url.

    rclone picks a random IV; here it is derived from the value, so the rendered file (and the
    container it is uploaded into) stays the same from one deploy to the next. Obscuring hides
    nothing from anyone with rclone (`rclone reveal`): the file holding it is a secret either way.
    """
    data = value.encode()
    iv = hashlib.sha256(data).digest()[:16]
    encryptor = Cipher(algorithms.AES(_RCLONE_OBSCURE_KEY), modes.CTR(iv)).encryptor()
    sealed = iv + encryptor.update(data) + encryptor.finalize()
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def render_offsite_crypt(directory: str, password: str, salt: str) -> str:
    """The rclone crypt remote that encrypts archives (content and names) into `directory`."""
    return (
        f"[{OFFSITE_CRYPT_REMOTE}]\n"
        "type = crypt\n"
        f"remote = {directory}\n"
        "filename_encryption = standard\n"
        "directory_name_encryption = true\n"
        f"password = {rclone_obscure(password)}\n"
        f"password2 = {rclone_obscure(salt)}\n"
    )


def render_offsite_rclone(operator_config: str, crypt_section: str | None) -> str:
    """The backup container's offsite rclone.conf: the operator's remotes, then the crypt remote when encrypting."""
    if crypt_section is None:
        return operator_config
    return f"{operator_config.rstrip()}\n\n{crypt_section}"


def offsite_restore_instructions(stack: str, directory: str, encrypted: bool, section_output: str) -> str:
    """How an operator restores from the offsite copy: through the deployment, or by hand with rclone."""
    through_deployment = f"{RESTORE_SCRIPT} {shlex.quote(stack)} latest --offsite"
    if not encrypted:
        return (
            f"Offsite copies of stack {stack} are in {directory}, unencrypted. To restore the newest: {through_deployment} "
            f"(or an archive by name instead of latest). By hand: rclone lsf {directory}"
        )
    return (
        f"Offsite copies of stack {stack} are in {directory}, encrypted with rclone crypt (names too). "
        f"To restore the newest: {through_deployment} (or an archive by name instead of latest). "
        f"Without this deployment: `pulumi stack output --show-secrets {section_output} >> rclone.conf` adds the "
        f"[{OFFSITE_CRYPT_REMOTE}] section to an rclone.conf that defines the remote of {directory}; then "
        f"`rclone --config rclone.conf lsf {OFFSITE_CRYPT_REMOTE}:` lists the archives and "
        f"`rclone --config rclone.conf copy {OFFSITE_CRYPT_REMOTE}:NAME .` fetches one decrypted. "
        "Keep that output outside the stack's state: without its keys the copies cannot be read."
    )


def render_pgpass(source: PostgresSource, password: str) -> str:
    """A libpq password file line for the one database the job dumps and restores."""

    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    # Any database: a restore connects to the maintenance database 'postgres' to recreate it.
    return f"{escaped(source.host)}:{source.port}:*:{escaped(source.user)}:{escaped(password)}\n"


def mysql_backup_account_statements(source: MysqlSource) -> str:
    """SQL that creates (or updates) the backup's MySQL account, for mysql_as_root.

    Every privilege on VoiceGrow's database and none elsewhere, which a dump and its restore need
    (tables, triggers, events; dropping and creating the database), plus reading routines' bodies,
    which only their definer may otherwise do: MySQL 8 names that SHOW_ROUTINE, MariaDB grants it
    as SELECT on mysql.proc; the server says which it is.
    """
    account = f"'{source.user}'@'%'"
    grant_routines = (
        f"IF(VERSION() LIKE '%MariaDB%', \"GRANT SELECT ON mysql.proc TO {account}\", \"GRANT SHOW_ROUTINE ON *.* TO {account}\")"
    )
    return (
        f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{voicegrow_render.PASSWORD_PLACEHOLDER}' WITH MAX_USER_CONNECTIONS 4;\n"
        f"ALTER USER {account} IDENTIFIED BY '{voicegrow_render.PASSWORD_PLACEHOLDER}';\n"
        f"GRANT ALL PRIVILEGES ON `{source.database}`.* TO {account};\n"
        f"SET @grant_routines = {grant_routines};\n"
        "PREPARE grant_routines FROM @grant_routines;\n"
        "EXECUTE grant_routines;\n"
        "DEALLOCATE PREPARE grant_routines;\n"
    )


def render_mysql_client(source: MysqlSource, password: str) -> str:
    """A [client] option file for mariadb-dump and mariadb: the password stays off the command line."""
    quoted = password.replace("\\", "\\\\").replace('"', '\\"')
    return f'[client]\nhost={source.host}\nport={source.port}\nuser={source.user}\npassword="{quoted}"\n'


def render_rclone_minio(source: BucketSource, access_key: str, secret_key: str) -> str:
    """rclone's S3 remote for MinIO (path-style requests, static keys; the loader keeps them one line)."""
    return (
        f"[{job_file.MINIO_REMOTE}]\n"
        "type = s3\n"
        "provider = Minio\n"
        "env_auth = false\n"
        f"access_key_id = {access_key}\n"
        f"secret_access_key = {secret_key}\n"
        f"endpoint = {source.endpoint}\n"
        "region = us-east-1\n"
    )


def restore_command(stack: str, prefix: str, default_prefix: str, docker_host: str | None) -> str:
    """The one command that restores the newest archive into this stack's running services."""
    environment = []
    if docker_host:
        environment.append(f"DOCKER_HOST={shlex.quote(docker_host)}")
    if prefix != default_prefix:
        environment.append(f"PREFIX={shlex.quote(prefix)}")
    return " ".join([*environment, RESTORE_SCRIPT, shlex.quote(stack), "latest"])
