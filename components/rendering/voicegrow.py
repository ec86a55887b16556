"""my.cnf, redis.conf and the VoiceGrow server's environment, from settings (guide §3.3, §4.1)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from components.rendering import render_template
from config.models import VoiceGrowSettings
from config.profiles import VoiceGrowTuning

DATABASE = "voicegrow"
DATABASE_USER = "voicegrow"
MYSQL_PORT = 3306
REDIS_PORT = 6379
MINIO_API_PORT = 9000
MINIO_APP_USER = "voicegrow-server"
"""The MinIO user the servers use: it may use the VoiceGrow bucket and nothing else."""
MINIO_APP_POLICY = "voicegrow-bucket"
MINIO_CONSOLE_PORT = 9001
SERVER_WS_PORT = 4399
SERVER_HTTP_PORT = 8000
REDIS_CONFIG_DIR = "/usr/local/etc/redis"
REDIS_CONFIG_PATH = f"{REDIS_CONFIG_DIR}/redis.conf"
MYSQL_CONFIG_DIR = "/etc/mysql/conf.d"
MYSQL_INIT_DIR = "/docker-entrypoint-initdb.d"
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class ServerSecrets:
    """The server's secret values, as plain strings at render time."""

    mysql_password: str
    redis_password: str
    minio_access_key: str
    minio_secret_key: str
    tts_api_key: str
    tts_secret_key: str
    llm_api_key: str
    llm_secret_key: str


def render_my_cnf(settings: VoiceGrowSettings, tuning: VoiceGrowTuning) -> str:
    """my.cnf with the guide's values; the buffer pool and redo log sized by the profile.

    Errors go to stderr (Docker's log) instead of the guide's /var/log/mysql, which the
    official image does not create; the slow query log stays in the data directory.
    Nothing MySQL 8.4 removed is set (no `default-authentication-plugin`). The redo log is
    sized with `innodb_redo_log_capacity`, which replaces the deprecated `innodb_log_file_size`
    (MySQL 8.0.30 and later). `loose-` lets a server without an option (MySQL 8.0 before 8.0.30
    for the redo log; before 8.4 for mysql_native_password, which 8.0 loads anyway) start without it.
    """
    return render_template(
        "my.cnf.j2",
        time_zone=settings.mysql.time_zone,
        buffer_pool=tuning.mysql_buffer_pool,
        redo_log_capacity=tuning.mysql_redo_log_capacity,
        max_connections=settings.mysql.max_connections,
        native_password=settings.mysql.native_password,
    )


def render_redis_conf(settings: VoiceGrowSettings, tuning: VoiceGrowTuning, password: str) -> str:
    """redis.conf with the guide's persistence and eviction, plus the password the guide lacks."""
    return render_template(
        "redis.conf.j2",
        {"redis_quoted": redis_quoted},
        port=REDIS_PORT,
        maxmemory=tuning.redis_maxmemory,
        maxclients=settings.redis_maxclients,
        password=password,
    )


def redis_quoted(value: str) -> str:
    """A double-quoted redis.conf argument that reads back as exactly `value`, whatever it holds."""
    escaped = []
    for byte in value.encode():
        if chr(byte) in '"\\':
            escaped.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            escaped.append(chr(byte))
        else:
            escaped.append(f"\\x{byte:02x}")
    return '"' + "".join(escaped) + '"'


def server_environment(settings: VoiceGrowSettings, secrets: ServerSecrets) -> list[str]:
    """The server's environment: the guide's tables (§3.1, §4.1), with the stack's hosts and keys."""
    values: dict[str, str | int | float | bool] = {
        "SERVER_HOST": "0.0.0.0",
        "WS_PORT": SERVER_WS_PORT,
        "HTTP_PORT": SERVER_HTTP_PORT,
        "DEBUG": settings.debug,
        "LOG_LEVEL": settings.log_level,
        "WORKERS": settings.workers,
        "ASR_MODEL_SIZE": settings.asr.model_size,
        "ASR_DEVICE": settings.asr.device,
        "ASR_COMPUTE_TYPE": settings.asr.compute_type,
        "ASR_LANGUAGE": settings.asr.language,
        "ASR_TIMEOUT": settings.asr.timeout,
        "TTS_BASE_URL": settings.tts.base_url,
        "TTS_VOICE_ZH": settings.tts.voice_zh,
        "TTS_VOICE_EN": settings.tts.voice_en,
        "TTS_SPEAKING_RATE": settings.tts.speaking_rate,
        "TTS_PITCH": settings.tts.pitch,
        "TTS_TIMEOUT": settings.tts.timeout,
        "LLM_BASE_URL": settings.llm.base_url,
        "LLM_MODEL": settings.llm.model,
        "LLM_MAX_TOKENS": settings.llm.max_tokens,
        "LLM_TEMPERATURE": settings.llm.temperature,
        "LLM_TIMEOUT": settings.llm.timeout,
        "MYSQL_HOST": "mysql",
        "MYSQL_PORT": MYSQL_PORT,
        "MYSQL_DATABASE": DATABASE,
        "MYSQL_USER": DATABASE_USER,
        "REDIS_HOST": "redis",
        "REDIS_PORT": REDIS_PORT,
        "MINIO_ENDPOINT": f"minio:{MINIO_API_PORT}",
        "MINIO_BUCKET": settings.bucket,
        "MINIO_SECURE": False,
    }
    for name, value in server_secrets(secrets).items():
        # A key that is not set is empty, not a secret: no file for it.
        if settings.secret_files and value:
            values[f"{name}_FILE"] = f"{SECRETS_DIR}/{name.lower()}"
        else:
            values[name] = value
    return [f"{name}={_env_value(value)}" for name, value in values.items()]


SERVER_SECRET_NAMES = (
    "TTS_API_KEY",
    "TTS_SECRET_KEY",
    "LLM_API_KEY",
    "LLM_SECRET_KEY",
    "MYSQL_PASSWORD",
    "REDIS_PASSWORD",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
)


def server_secrets(secrets: ServerSecrets) -> dict[str, str]:
    """The server's secret variables; with `secret_files`, each is the file `SECRETS_DIR/<name in lower case>`."""
    values = (
        secrets.tts_api_key,
        secrets.tts_secret_key,
        secrets.llm_api_key,
        secrets.llm_secret_key,
        secrets.mysql_password,
        secrets.redis_password,
        secrets.minio_access_key,
        secrets.minio_secret_key,
    )
    return dict(zip(SERVER_SECRET_NAMES, values, strict=True))


def _env_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mysql_accounts_sql(user_password: str, root_password: str) -> str:
    """SQL that gives VoiceGrow's account and root these passwords, and root no login from the
    network (read by mysql from stdin).

    A stack first deployed with the image's default MYSQL_ROOT_HOST ('%') has root at '%' too.
    """

    def quoted(password: str) -> str:
        return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return (
        f"ALTER USER '{DATABASE_USER}'@'%' IDENTIFIED BY {quoted(user_password)};\n"
        "DROP USER IF EXISTS 'root'@'%';\n"
        f"ALTER USER 'root'@'localhost' IDENTIFIED BY {quoted(root_password)};\n"
    )


MYSQL_ROOT_CLIENT = f'MYSQL_PWD="$(cat {SECRETS_DIR}/root_password)" mysql -uroot'
"""Shell words, in the MySQL container, of mysql as root over its socket, with the password its file holds."""

PASSWORD_PLACEHOLDER = "<password>"


def mysql_as_root(statements: str, password_variable: str) -> list[str]:
    """Command, run in the MySQL container, that runs `statements` as root over the container's
    socket, each PASSWORD_PLACEHOLDER in them replaced by the environment variable
    `password_variable` (a generated password: letters and digits).

    The shell's built-in printf writes the password into the SQL that mysql reads on stdin: it is
    on no process's command line. Root's password is read from its file in the container.
    """
    template = statements.replace("%", "%%").replace(PASSWORD_PLACEHOLDER, "%s").replace("\n", "\\n")
    values = " ".join(f'"${password_variable}"' for _ in range(statements.count(PASSWORD_PLACEHOLDER)))
    return [
        "sh",
        "-c",
        f"printf {shlex.quote(template)} {values} | {MYSQL_ROOT_CLIENT}",
    ]


def minio_bucket_policy(bucket: str) -> str:
    """The policy of MINIO_APP_USER: every object operation in the bucket, nothing elsewhere."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": [f"arn:aws:s3:::{bucket}"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                    "Resource": [f"arn:aws:s3:::{bucket}/*"],
                },
            ],
        },
        separators=(",", ":"),
    )


def minio_app_user_command(bucket: str) -> list[str]:
    """Command, run in the MinIO container with the root user's alias `local` (MC_HOST_local),
    that makes MINIO_APP_USER with the secret key APP_SECRET_KEY (made again with a new one when
    it changed) and gives it MINIO_APP_POLICY. The secret goes to mc on stdin, never argv."""
    script = f"""set -eu
printf '%s\\n' "$APP_SECRET_KEY" | mc admin user add local {MINIO_APP_USER}
printf '%s' {shlex.quote(minio_bucket_policy(bucket))} | mc admin policy create local {MINIO_APP_POLICY} /dev/stdin
if ! attached="$(mc admin policy attach local {MINIO_APP_POLICY} --user {MINIO_APP_USER} 2>&1)"; then
  case "$attached" in *"already in effect"*) ;; *) echo "$attached" >&2; exit 1 ;; esac
fi
"""
    return ["sh", "-c", script]
