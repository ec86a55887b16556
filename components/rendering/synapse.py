"""homeserver.yaml, Synapse's log config, .well-known JSON and the nginx that serves it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components.rendering import NGINX_TEMP_PATHS, dump_yaml, render_template
from components.rendering.backup import PostgresSource, render_pgpass
from components.rendering.synapse_workers import replication_listener, shared_worker_config
from config.merge import deep_merge
from config.models import SynapseSettings
from config.profiles import PostgresTuning, SynapseTuning, SynapseWorker

CONFIG_DIR = "/config"
CONFIG_PATH = f"{CONFIG_DIR}/homeserver.yaml"
LOG_CONFIG_PATH = f"{CONFIG_DIR}/log.config"
# Each secret in a file of its own beside the config, read by Synapse (`*_path`) and libpq (`passfile`).
SECRET_FILES = ("macaroon_secret_key", "form_secret", "registration_shared_secret", "pgpass")
DATA_DIR = "/data"
SIGNING_KEY_PATH = f"{DATA_DIR}/signing.key"
MEDIA_STORE_PATH = f"{DATA_DIR}/media_store"
HTTP_PORT = 8008
METRICS_PORT = 9000
DATABASE_NAME = "synapse"
DATABASE_USER = "synapse"


@dataclass(frozen=True)
class SynapseSecrets:
    """The secret values Synapse reads from its secret files, as plain strings at render time."""

    postgres_password: str
    macaroon_secret_key: str
    form_secret: str
    registration_shared_secret: str


def public_baseurl(settings: SynapseSettings, tls: bool) -> str:
    """The URL clients reach Synapse at."""
    if settings.public_baseurl:
        return settings.public_baseurl
    return f"{'https' if tls else 'http'}://{settings.host}/"


def homeserver_config(
    settings: SynapseSettings,
    tuning: SynapseTuning,
    database_host: str,
    tls: bool,
    workers: Sequence[SynapseWorker] = (),
) -> dict[str, Any]:
    """homeserver.yaml as a mapping, with the operator's extra_config merged last; secrets are files it names.

    With `workers`, the main process also listens for replication and the file carries what the
    main process and the workers share (Redis, instance_map, who does which duty); without, it
    is the single process's config, unchanged.
    """
    listeners: list[dict[str, Any]] = [
        {
            "port": HTTP_PORT,
            "type": "http",
            "tls": False,
            # Inside the container: IPv6 may be absent, and the host side is published on http_bind.
            "bind_addresses": ["0.0.0.0"],
            "x_forwarded": True,
            "resources": [{"names": ["client", "federation"], "compress": False}],
        }
    ]
    if settings.metrics:
        listeners.append({"port": METRICS_PORT, "type": "metrics", "bind_addresses": ["0.0.0.0"]})
    if workers:
        listeners.append(replication_listener())
    login_limit = {"per_second": 0.17, "burst_count": 3}
    config: dict[str, Any] = {
        "server_name": settings.server_name,
        "public_baseurl": public_baseurl(settings, tls),
        "pid_file": f"{DATA_DIR}/homeserver.pid",
        "report_stats": False,
        "listeners": listeners,
        "database": {
            "name": "psycopg2",
            "args": {
                "user": DATABASE_USER,
                "passfile": f"{CONFIG_DIR}/pgpass",
                "dbname": DATABASE_NAME,
                "host": database_host,
                "port": 5432,
                "cp_min": tuning.db_pool_min,
                "cp_max": tuning.db_pool_max,
                "keepalives_idle": 10,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        },
        "log_config": LOG_CONFIG_PATH,
        "media_store_path": MEDIA_STORE_PATH,
        "max_upload_size": settings.max_upload_size,
        "signing_key_path": SIGNING_KEY_PATH,
        "trusted_key_servers": [{"server_name": name} for name in settings.trusted_key_servers],
        "suppress_key_server_warning": True,
        **{f"{name}_path": f"{CONFIG_DIR}/{name}" for name in SECRET_FILES if name != "pgpass"},
        "caches": {
            "global_factor": tuning.global_cache_factor,
            "event_cache_size": str(tuning.event_cache_size),
            "sync_response_cache_duration": "2m",
            "cache_autotuning": {
                "max_cache_memory_usage": tuning.cache_max_memory,
                "target_cache_memory_usage": tuning.cache_target_memory,
                "min_cache_ttl": "5m",
            },
        },
        **_registration(settings),
        "rc_message": {"per_second": tuning.message_rate_per_second, "burst_count": tuning.message_burst},
        "rc_registration": {"per_second": 0.0017, "burst_count": 1},
        "rc_login": {"address": login_limit, "account": login_limit, "failed_attempts": login_limit},
        "presence": {"enabled": settings.presence},
        "enable_metrics": settings.metrics,
        "allow_guest_access": settings.guest_access,
        **({"web_client_location": settings.web_client_location} if settings.web_client_location else {}),
        "allow_public_rooms_over_federation": False,
        "allow_public_rooms_without_auth": False,
        "url_preview_enabled": False,
        **_retention(settings),
        **(shared_worker_config(list(workers)) if workers else {}),
    }
    return deep_merge(config, settings.extra_config)


def _retention(settings: SynapseSettings) -> dict[str, Any]:
    """Synapse's `retention` (only when enabled: it is off by default) and `media_retention` (the lifetimes set)."""
    config: dict[str, Any] = {}
    retention = settings.retention
    if retention.enabled:
        policy = {"max_lifetime": retention.max_lifetime}
        if retention.min_lifetime is not None:
            policy["min_lifetime"] = retention.min_lifetime
        config["retention"] = {"enabled": True, "default_policy": policy}
    lifetimes = {
        name: value
        for name in ("local_media_lifetime", "remote_media_lifetime")
        if (value := getattr(settings.media_retention, name)) is not None
    }
    if lifetimes:
        config["media_retention"] = lifetimes
    return config


def _registration(settings: SynapseSettings) -> dict[str, Any]:
    if settings.registration == "open":
        return {"enable_registration": True, "enable_registration_without_verification": True}
    if settings.registration == "token":
        return {"enable_registration": True, "registration_requires_token": True}
    return {"enable_registration": False}


def render_homeserver_yaml(
    settings: SynapseSettings, tuning: SynapseTuning, database_host: str, tls: bool, workers: Sequence[SynapseWorker] = ()
) -> str:
    """homeserver.yaml text."""
    return dump_yaml(homeserver_config(settings, tuning, database_host, tls, workers))


def render_secret_files(secrets: SynapseSecrets, database_host: str) -> dict[str, str]:
    """The content of each of SECRET_FILES."""
    database = PostgresSource(host=database_host, port=5432, user=DATABASE_USER, database=DATABASE_NAME)
    return {
        "macaroon_secret_key": secrets.macaroon_secret_key,
        "form_secret": secrets.form_secret,
        "registration_shared_secret": secrets.registration_shared_secret,
        "pgpass": render_pgpass(database, secrets.postgres_password),
    }


def render_log_config(log_level: str) -> str:
    """Synapse's logging config: to stdout only, where Docker's json-file driver rotates it."""
    return dump_yaml(
        {
            "version": 1,
            "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "precise"}},
            # At DEBUG, SQL text, a timing line per database transaction and one per measured
            # block flood the log even in development, and writing them takes CPU that Synapse
            # lacks at 0.6 CPU (benchmarks/synapse_delivery.py: messages in a busy room were
            # delivered about half again slower with them).
            "loggers": {
                "synapse.storage.SQL": {"level": "WARNING"},
                "synapse.storage.txn": {"level": "INFO"},
                "synapse.util.metrics": {"level": "INFO"},
            },
            "root": {"level": log_level, "handlers": ["console"]},
            "disable_existing_loggers": False,
        }
    )


def postgres_server_args(tuning: PostgresTuning) -> list[str]:
    """The `postgres -c` arguments that apply the profile's tuning (the image ignores env vars for these)."""
    values = {
        "shared_buffers": tuning.shared_buffers,
        "effective_cache_size": tuning.effective_cache_size,
        "work_mem": tuning.work_mem,
        "maintenance_work_mem": tuning.maintenance_work_mem,
        "max_connections": str(tuning.max_connections),
    }
    return ["postgres", *[arg for name, value in values.items() for arg in ("-c", f"{name}={value}")]]


def wellknown_server(settings: SynapseSettings) -> dict[str, str]:
    """/.well-known/matrix/server: federation delegated to the public host on 443."""
    return {"m.server": f"{settings.host}:443"}


def wellknown_client(settings: SynapseSettings, tls: bool) -> dict[str, Any]:
    """/.well-known/matrix/client: where clients find the homeserver (and identity server)."""
    document: dict[str, Any] = {"m.homeserver": {"base_url": public_baseurl(settings, tls).rstrip("/")}}
    if settings.identity_server:
        document["m.identity_server"] = {"base_url": settings.identity_server.rstrip("/")}
    return document


def render_wellknown_nginx_conf(settings: SynapseSettings, tls: bool) -> str:
    """nginx server block that answers both .well-known documents as JSON with CORS."""
    documents = [
        (name, json.dumps(document, separators=(",", ":")).replace("'", "\\'"))
        for name, document in (("server", wellknown_server(settings)), ("client", wellknown_client(settings, tls)))
    ]
    return render_template("wellknown.conf.j2", nginx_temp_paths=NGINX_TEMP_PATHS, documents=documents)


def postgres_password_sql(password: str) -> str:
    """SQL that gives Synapse's database role `password` (psql reads it from stdin: never on a command line)."""
    quoted = password.replace("'", "''")
    return f"ALTER ROLE {DATABASE_USER} PASSWORD '{quoted}';\n"


POSTGRES_DATA = "/var/lib/postgresql/data"
UPGRADE_DIR = "/var/lib/postgresql/upgrade"
"""Where a major upgrade keeps its dump and the old cluster (a volume of its own)."""
UPGRADE_DUMP = f"{UPGRADE_DIR}/synapse.dump"


@dataclass(frozen=True)
class PostgresUpgrade:
    """The names a major upgrade of Synapse's PostgreSQL acts on."""

    postgres: str
    """The PostgreSQL container's name."""
    synapse: tuple[str, ...]
    """Synapse's containers: the main process, then its workers."""
    data_volume: str
    upgrade_volume: str
    image: str
    """The image PostgreSQL is about to run."""
    user: str
    """`uid:gid` of the server's files."""
    health_timeout: int = 300
    """Seconds the restore waits for each Synapse container to be healthy again."""


def render_postgres_upgrade_dump(upgrade: PostgresUpgrade) -> str:
    """Shell script run before PostgreSQL is replaced: when the new image is another major
    version, stop Synapse, dump its database from the running server, stop that server and move
    its cluster to the upgrade volume, leaving the data volume empty for the new server's
    initdb. The same major version (or no server yet) does nothing; an older one is refused."""
    return render_template("postgres-upgrade-dump.sh.j2", **_upgrade_values(upgrade))


def render_postgres_upgrade_restore(upgrade: PostgresUpgrade) -> str:
    """Shell script run once the new PostgreSQL is healthy: when a major upgrade left a dump,
    restore it in one transaction, keep it as the last restored dump, start Synapse again and
    wait until each of its containers is healthy."""
    return render_template("postgres-upgrade-restore.sh.j2", **_upgrade_values(upgrade))


def _upgrade_values(upgrade: PostgresUpgrade) -> dict[str, object]:
    return {
        "upgrade": upgrade,
        "data": POSTGRES_DATA,
        "dump": UPGRADE_DUMP,
        "upgrade_dir": UPGRADE_DIR,
        "user": DATABASE_USER,
        "database": DATABASE_NAME,
    }
