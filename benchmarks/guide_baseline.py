"""The Synapse guide's own deployment (§3.5 homeserver.yaml, §3.6 log config, §3.8 compose
limits), started with the Docker SDK in the same images the program uses.

The guide's files are kept as written; `adapted_homeserver_config` changes only what is needed
to run here (database password, the signing key Synapse creates at first start, the load
clients' rate limits), and every change is listed in `ADAPTATIONS`.
"""

from __future__ import annotations

import io
import secrets
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import yaml

from config.merge import deep_merge

# §3.5, verbatim (comments translated).
GUIDE_HOMESERVER_YAML = """\
# Matrix Synapse config - tuned for 1 CPU / 2 GB RAM
server_name: "matrix.example.com"
pid_file: /data/homeserver.pid
web_client_location: https://app.element.io/
public_baseurl: https://matrix.example.com/

# listeners
listeners:
  - port: 8008
    tls: false
    type: http
    x_forwarded: true
    bind_addresses: ['0.0.0.0']
    resources:
      - names: [client, federation]
        compress: false

# database - tuned for a small server
database:
  name: psycopg2
  args:
    user: synapse
    password: your_secure_password_here
    database: synapse
    host: postgres
    port: 5432
    cp_min: 1          # minimum connections (small server)
    cp_max: 2          # maximum connections (small server)

# logging
log_config: "/data/log.config"

# media store
media_store_path: "/media"
uploads_path: "/uploads"
max_upload_size: 8M    # lower upload limit to save memory

# caches - tuned for 2 GB RAM
caches:
  global_factor: 0.2   # lower cache factor to save memory
  event_cache_size: 500 # smaller event cache

# registration without verification, rate limited
enable_registration: true
enable_registration_without_verification: true
registration_requires_token: false

# registration rate limit - one per 10 minutes
rc_registration:
  per_second: 0.0017
  burst_count: 1

# message rate limit - lowered to reduce CPU load
rc_message:
  per_second: 0.5
  burst_count: 10

# login rate limit
rc_login:
  address:
    per_second: 0.17
    burst_count: 3
  account:
    per_second: 0.17
    burst_count: 3
  failed_attempts:
    per_second: 0.17
    burst_count: 3

# features turned off to save resources
enable_metrics: false
enable_media_repo: true
allow_guest_access: false
allow_public_rooms_over_federation: false
allow_public_rooms_without_auth: false

# security
use_presence: false    # presence off to save resources
suppress_key_server_warning: true

# stats reporting
report_stats: false

# signing key
signing_key_path: "/data/signing.key"
trusted_key_servers:
  - server_name: "matrix.org"
"""

# §3.6, verbatim.
GUIDE_LOG_CONFIG = """\
version: 1

formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'

handlers:
  file:
    class: logging.handlers.TimedRotatingFileHandler
    formatter: precise
    filename: /logs/homeserver.log
    when: midnight
    backupCount: 3
    encoding: utf8

  console:
    class: logging.StreamHandler
    formatter: precise

loggers:
    synapse.storage.SQL:
        level: WARN

root:
    level: WARN
    handlers: [file, console]

disable_existing_loggers: false
"""

ADAPTATIONS = (
    "database password: a generated one instead of the placeholder",
    "signing key: created by Synapse at first start (the guide generates it in §3.10)",
    "rate limits: the benchmark's overrides, the same ones the program's side gets",
    "images: the same Synapse and PostgreSQL images as the program's side (the guide builds "
    "python:3.9-slim + pip and uses postgres:13-alpine)",
    "/data, /media, /uploads, /logs: named volumes handed to Synapse's user before it starts "
    "(the guide uses host directories)",
)

# §3.8: limits and reservations (MB, CPUs), health checks and environment.
POSTGRES_LIMITS = (384, 0.3, 256)
SYNAPSE_LIMITS = (1280, 0.6, 1024)
SYNAPSE_UID = "991:991"


def adapted_homeserver_config(password: str, rate_limits: dict[str, Any]) -> dict[str, Any]:
    config = yaml.safe_load(GUIDE_HOMESERVER_YAML)
    config["database"]["args"]["password"] = password
    return deep_merge(config, rate_limits)


def _archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.uid, info.gid = 991, 991
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _healthcheck(test: list[str], interval: int, timeout: int, retries: int, start_period: int) -> dict[str, Any]:
    second = 1_000_000_000
    return {
        "test": test,
        "interval": interval * second,
        "timeout": timeout * second,
        "retries": retries,
        "start_period": start_period * second,
    }


@dataclass
class GuideDeployment:
    """The guide's PostgreSQL and Synapse on their own network; `remove()` takes everything away."""

    client: docker.DockerClient
    prefix: str
    http_port: int
    images: dict[str, str]
    rate_limits: dict[str, Any]
    cpuset: str | None = None
    """The cores every container may run on (`docker run --cpuset-cpus`); None: all of them."""
    containers: dict[str, str] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start_postgres(self, password: str) -> None:
        api = self.client.api
        network = self.client.networks.create(self.name("net"), driver="bridge", labels={"bench": self.prefix})
        self.networks.append(network.name)
        for suffix in ("postgres", "data", "media", "uploads", "logs"):
            volume = self.client.volumes.create(self.name(suffix), labels={"bench": self.prefix})
            self.volumes.append(volume.name)
        memory, cpus, reservation = POSTGRES_LIMITS
        container = api.create_container(
            self.images["postgres"],
            name=self.name("postgres"),
            environment={
                "POSTGRES_USER": "synapse",
                "POSTGRES_PASSWORD": password,
                "POSTGRES_DB": "synapse",
                "POSTGRES_INITDB_ARGS": "--encoding=UTF-8 --lc-collate=C --lc-ctype=C",
                # The guide's tuning: the image reads none of these, so PostgreSQL keeps its defaults.
                "POSTGRES_SHARED_BUFFERS": "256MB",
                "POSTGRES_EFFECTIVE_CACHE_SIZE": "1GB",
                "POSTGRES_WORK_MEM": "4MB",
                "POSTGRES_MAINTENANCE_WORK_MEM": "64MB",
            },
            healthcheck=_healthcheck(["CMD-SHELL", "pg_isready -U synapse"], 60, 10, 3, 30),
            labels={"bench": self.prefix},
            host_config=api.create_host_config(
                mem_limit=f"{memory}m",
                mem_reservation=f"{reservation}m",
                nano_cpus=int(cpus * 1e9),
                cpuset_cpus=self.cpuset,
                restart_policy={"Name": "unless-stopped"},
                binds={self.name("postgres"): {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
            ),
            networking_config=api.create_networking_config(
                {network.name: api.create_endpoint_config(aliases=["postgres"])}
            ),
        )
        self.containers["postgres"] = container["Id"]
        api.start(container["Id"])

    def wait_postgres(self, timeout: float = 120) -> None:
        """Until PostgreSQL accepts TCP connections (the image's init server listens on its socket only)."""
        container = self.client.containers.get(self.containers["postgres"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "synapse", "-d", "synapse"]).exit_code == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the guide's PostgreSQL did not accept connections within {timeout:.0f} s")

    def start_synapse(self, password: str) -> None:
        api = self.client.api
        memory, cpus, reservation = SYNAPSE_LIMITS
        homeserver = yaml.safe_dump(adapted_homeserver_config(password, self.rate_limits), sort_keys=False)
        container = api.create_container(
            self.images["synapse"],
            name=self.name("synapse"),
            entrypoint=["/bin/sh", "-c", f"chown {SYNAPSE_UID} /data /media /uploads /logs && exec /start.py run"],
            environment={
                "SYNAPSE_CONFIG_PATH": "/data/homeserver.yaml",
                "PYTHONOPTIMIZE": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
            },
            ports=[8008],
            healthcheck=_healthcheck(
                ["CMD", "curl", "-f", "http://localhost:8008/_matrix/client/versions"], 60, 15, 3, 120
            ),
            labels={"bench": self.prefix},
            host_config=api.create_host_config(
                mem_limit=f"{memory}m",
                mem_reservation=f"{reservation}m",
                nano_cpus=int(cpus * 1e9),
                cpuset_cpus=self.cpuset,
                restart_policy={"Name": "unless-stopped"},
                port_bindings={8008: ("127.0.0.1", self.http_port)},
                binds={
                    self.name(suffix): {"bind": f"/{suffix}", "mode": "rw"}
                    for suffix in ("data", "media", "uploads", "logs")
                },
            ),
            networking_config=api.create_networking_config(
                {self.networks[0]: api.create_endpoint_config(aliases=["synapse"])}
            ),
        )
        self.containers["synapse"] = container["Id"]
        api.put_archive(
            container["Id"], "/data", _archive({"homeserver.yaml": homeserver, "log.config": GUIDE_LOG_CONFIG})
        )
        api.start(container["Id"])

    def remove(self) -> list[str]:
        """Remove what was created; returns what could not be removed."""
        leftovers: list[str] = []
        api = self.client.api
        for role, container_id in reversed(list(self.containers.items())):
            try:
                api.remove_container(container_id, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                leftovers.append(f"container {role}: {exc}")
        for name in self.networks:
            try:
                api.remove_network(name)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                leftovers.append(f"network {name}: {exc}")
        for name in self.volumes:
            try:
                api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                leftovers.append(f"volume {name}: {exc}")
        self.containers.clear()
        self.networks.clear()
        self.volumes.clear()
        return leftovers


def generated_password() -> str:
    return secrets.token_urlsafe(24)
