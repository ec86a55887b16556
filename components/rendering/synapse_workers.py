"""Synapse with workers: the shared config they add, each worker's config, Redis's, and the proxy's routes.

As Synapse's worker documentation describes: the main process and every worker talk over Redis
and HTTP replication; generic workers answer /sync (every request of one user on the same
worker, for its caches) and the other client endpoints; a media repository serves media; a
federation sender, a pusher and a background worker take those duties off the main process;
event persisters, where the profile has them, write the events stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.rendering import dump_yaml
from components.rendering.voicegrow import redis_quoted
from config.profiles import SynapseWorker, SynapseWorkerPlan, WorkerKind

HTTP_PORT = 8008
REPLICATION_PORT = 9093
METRICS_PORT = 9000
MAIN_HOST = "synapse"
REDIS_HOST = "synapse-redis"
REDIS_PORT = 6379
REDIS_CONFIG_DIR = "/usr/local/etc/redis"
REDIS_CONFIG_PATH = f"{REDIS_CONFIG_DIR}/redis.conf"
CONFIG_DIR = "/config"
WORKER_CONFIG_PATH = f"{CONFIG_DIR}/worker.yaml"
# Secret files beside homeserver.yaml, read by Synapse (`*_path`).
SECRET_FILES = ("redis_password", "worker_replication_secret")

GENERIC_WORKER = "synapse.app.generic_worker"
MEDIA_REPOSITORY = "synapse.app.media_repository"

# The endpoints each routed worker serves, as the worker documentation lists them for
# `synapse.app.generic_worker` and `synapse.app.media_repository`. Left on the main process: the
# federation endpoints (a worker's federation would need its own listener and key handling),
# the admin API (the proxy's allowlist guards /_synapse/admin), the endpoints the documentation
# allows only for GET, pagination, and SSO.
SYNC_ENDPOINTS = (
    "^/_matrix/client/(r0|v3)/sync$",
    "^/_matrix/client/(api/v1|r0|v3)/events$",
    "^/_matrix/client/(api/v1|r0|v3)/initialSync$",
    "^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
)
CLIENT_READER_ENDPOINTS = (
    # Client API requests
    "^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$",
    "^/_matrix/client/v1/rooms/.*/hierarchy$",
    "^/_matrix/client/(v1|unstable)/rooms/.*/relations/",
    "^/_matrix/client/v1/rooms/.*/threads$",
    "^/_matrix/client/(r0|v3|unstable)/account/3pid$",
    "^/_matrix/client/(r0|v3|unstable)/account/whoami$",
    "^/_matrix/client/(r0|v3|unstable)/account/deactivate$",
    "^/_matrix/client/(r0|v3)/delete_devices$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/devices(/|$)",
    "^/_matrix/client/versions$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$",
    "^/_matrix/client/v1/rooms/.*/timestamp_to_event$",
    "^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/search$",
    "^/_matrix/client/(r0|v3|unstable)/user/.*/filter(/|$)",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/.*$",
    "^/_matrix/client/(r0|v3|unstable)/capabilities$",
    "^/_matrix/client/(r0|v3|unstable)/notifications$",
    # Encryption requests
    "^/_matrix/client/(r0|v3|unstable)/keys/query$",
    "^/_matrix/client/(r0|v3|unstable)/keys/changes$",
    "^/_matrix/client/(r0|v3|unstable)/keys/claim$",
    "^/_matrix/client/(r0|v3|unstable)/room_keys/",
    "^/_matrix/client/(r0|v3|unstable)/keys/upload",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/keys/device_signing/upload$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/keys/signatures/upload$",
    # Registration/login requests
    "^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
    "^/_matrix/client/(r0|v3|unstable)/register$",
    "^/_matrix/client/(r0|v3|unstable)/register/available$",
    "^/_matrix/client/v1/register/m.login.registration_token/validity$",
    "^/_matrix/client/(r0|v3|unstable)/password_policy$",
    # Event sending requests
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/redact",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/send",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/(join|invite|leave|ban|unban|kick)$",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/join/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/knock/",
    "^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
    # User directory search requests
    "^/_matrix/client/(r0|v3|unstable)/user_directory/search$",
)
MEDIA_ENDPOINTS = (
    "^/_matrix/media/",
    "^/_matrix/client/v1/media/",
)

# What each kind of worker serves on its HTTP listener; every worker answers /health there.
_LISTENER_RESOURCES: dict[WorkerKind, list[str]] = {
    "sync": ["client"],
    "client_reader": ["client"],
    "media": ["media"],
    "federation_sender": [],
    "pusher": [],
    "background": [],
    "event_persister": [],
}


def worker_host(worker: SynapseWorker) -> str:
    """The worker's container name after the prefix, and its host name on Synapse's network."""
    return f"synapse-{worker.name.replace('_', '-')}"


def worker_app(worker: SynapseWorker) -> str:
    """The Synapse application the worker runs."""
    return MEDIA_REPOSITORY if worker.kind == "media" else GENERIC_WORKER


def _named(workers: list[SynapseWorker], kind: WorkerKind) -> list[str]:
    return [worker.name for worker in workers if worker.kind == kind]


def replication_listener() -> dict[str, Any]:
    """The HTTP replication listener of the main process and of the stream writers."""
    return {"port": REPLICATION_PORT, "type": "http", "bind_addresses": ["0.0.0.0"], "resources": [{"names": ["replication"]}]}


def shared_worker_config(workers: list[SynapseWorker]) -> dict[str, Any]:
    """What the workers add to homeserver.yaml, which the main process and every worker read."""
    persisters = [worker for worker in workers if worker.kind == "event_persister"]
    background = _named(workers, "background")[0]
    config: dict[str, Any] = {
        "instance_map": {
            "main": {"host": MAIN_HOST, "port": REPLICATION_PORT},
            **{worker.name: {"host": worker_host(worker), "port": REPLICATION_PORT} for worker in persisters},
        },
        "redis": {"enabled": True, "host": REDIS_HOST, "port": REDIS_PORT, "password_path": f"{CONFIG_DIR}/redis_password"},
        "worker_replication_secret_path": f"{CONFIG_DIR}/worker_replication_secret",
        "federation_sender_instances": _named(workers, "federation_sender"),
        "pusher_instances": _named(workers, "pusher"),
        "run_background_tasks_on": background,
        "update_user_directory_from_worker": background,
        "notify_appservices_from_worker": background,
        "enable_media_repo": False,
        "media_instance_running_background_jobs": _named(workers, "media")[0],
    }
    if persisters:
        config["stream_writers"] = {"events": [worker.name for worker in persisters]}
    return config


def worker_config(worker: SynapseWorker, database: dict[str, Any], plan: SynapseWorkerPlan, metrics: bool) -> dict[str, Any]:
    """The worker's own config file, read after homeserver.yaml: its name, app, listeners and database pool."""
    listeners: list[dict[str, Any]] = [
        {
            "port": HTTP_PORT,
            "type": "http",
            "bind_addresses": ["0.0.0.0"],
            "x_forwarded": True,
            "resources": [{"names": _LISTENER_RESOURCES[worker.kind], "compress": False}],
        }
    ]
    if worker.kind == "event_persister":
        listeners.append(replication_listener())
    if metrics:
        listeners.append({"port": METRICS_PORT, "type": "metrics", "bind_addresses": ["0.0.0.0"]})
    return {
        "worker_app": worker_app(worker),
        "worker_name": worker.name,
        "worker_listeners": listeners,
        "worker_log_config": f"{CONFIG_DIR}/log.config",
        # Each worker opens its own pool: smaller than the main process's, so that all of them fit
        # PostgreSQL's connections and memory.
        "database": {**database, "args": {**database["args"], "cp_min": 1, "cp_max": plan.db_pool_max}},
    }


def render_worker_yaml(worker: SynapseWorker, database: dict[str, Any], plan: SynapseWorkerPlan, metrics: bool) -> str:
    """worker.yaml text."""
    return dump_yaml(worker_config(worker, database, plan, metrics))


def render_redis_conf(password: str, memory_mb: int) -> str:
    """redis.conf of Synapse's replication bus: pub/sub and a small cache, nothing kept on disk."""
    lines = [
        # Reachable only on Synapse's private network; the password guards it there too.
        "bind 0.0.0.0",
        f"port {REDIS_PORT}",
        "daemonize no",
        "dir /tmp",
        'save ""',
        "appendonly no",
        f"maxmemory {memory_mb * 3 // 4}mb",
        "maxmemory-policy allkeys-lru",
        "loglevel notice",
        'logfile ""',
        f"requirepass {redis_quoted(password)}",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WorkerRoute:
    """One upstream of workers for the proxy, and the endpoint patterns it serves."""

    upstream: str
    servers: list[str]
    endpoints: tuple[str, ...]
    by_user: bool
    """Requests of one user go to the same server (hashed on the access token's user part)."""


def worker_routes(workers: list[SynapseWorker]) -> list[WorkerRoute]:
    """The proxy's worker upstreams; every other Matrix request goes to the main process."""
    def servers(kind: WorkerKind) -> list[str]:
        return [f"{worker_host(worker)}:{HTTP_PORT}" for worker in workers if worker.kind == kind]

    return [
        WorkerRoute("synapse_sync", servers("sync"), SYNC_ENDPOINTS, by_user=True),
        WorkerRoute("synapse_client_reader", servers("client_reader"), CLIENT_READER_ENDPOINTS, by_user=False),
        WorkerRoute("synapse_media", servers("media"), MEDIA_ENDPOINTS, by_user=False),
    ]
