"""Named sizing profiles: container limits and the tuning that goes with them.

`small` is the Synapse guide's 1 vCPU / 2 GB VPS, `medium` its 2 vCPU / 4 GB upgrade
(guide §4.1 and §9.4). The VoiceGrow guide's limits (§4.2) are its production machine;
`small` and `medium` scale them down to what fits beside Synapse on those hosts; `large` is
that production machine (8 vCPU / 16 GB) with §4.2's limits, and gives Synapse twice `medium`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from config.roles import ROLES

ProfileName = Literal["small", "medium", "large"]


@dataclass(frozen=True)
class ContainerLimits:
    """Memory (MB) of one container and the memory it reserves; its CPU weight, and a CPU cap where one is needed.

    `cpu_weight` is Docker's CPU shares (1024 is Docker's default): under contention each
    container gets CPU time in proportion to its weight, and when the others are idle it may use
    all of it. `cpus` is a hard cap that holds even on an idle host: None for the services on
    the request path (what PostgreSQL leaves idle, Synapse may use), a number only where a
    runaway must be contained.
    """

    memory_mb: int
    reservation_mb: int
    cpu_weight: int
    cpus: float | None = None


@dataclass(frozen=True)
class PostgresTuning:
    """PostgreSQL server settings passed as `-c` arguments (the image ignores env vars for these)."""

    shared_buffers: str
    effective_cache_size: str
    work_mem: str
    maintenance_work_mem: str
    max_connections: int

    def memory_needed_mb(self, connections: int) -> int:
        """Memory PostgreSQL can use with these settings and this many open connections.

        shared_buffers, plus maintenance_work_mem for each autovacuum worker (PostgreSQL runs
        up to 3), plus work_mem and a backend's own memory for each connection, plus the other
        server processes. Not work_mem x max_connections: the connections that are actually
        opened are counted (Synapse's database pool and a few more), not the ceiling.
        """
        per_connection = size_mb(self.work_mem) + POSTGRES_BACKEND_MB
        return math.ceil(
            size_mb(self.shared_buffers)
            + POSTGRES_AUTOVACUUM_WORKERS * size_mb(self.maintenance_work_mem)
            + connections * per_connection
            + POSTGRES_SERVER_MB
        )


@dataclass(frozen=True)
class SynapseTuning:
    """homeserver.yaml values that trade memory and CPU for throughput."""

    global_cache_factor: float
    event_cache_size: int
    cache_max_memory: str
    cache_target_memory: str
    db_pool_min: int
    db_pool_max: int
    max_upload_size: str
    message_rate_per_second: float
    message_burst: int
    presence: bool


@dataclass(frozen=True)
class SynapseWorkerPlan:
    """How many Synapse processes of each kind run when `synapse.workers` is on, and whether it is by default.

    One Synapse process uses one core at most (Python's GIL): past one core, Synapse needs
    workers. Each worker opens its own database pool of `db_pool_max` connections.
    """

    default: bool
    sync_workers: int
    event_persisters: int
    db_pool_max: int


WorkerKind = Literal["sync", "client_reader", "federation_sender", "media", "pusher", "background", "event_persister"]


@dataclass(frozen=True)
class SynapseWorker:
    """One Synapse worker process: its kind and its number among those of its kind."""

    kind: WorkerKind
    number: int

    @property
    def name(self) -> str:
        """Its `worker_name` and its container's name after `synapse-` (`sync1`, `event_persister2`)."""
        return f"{self.kind}{self.number}"


def synapse_workers(plan: SynapseWorkerPlan) -> list[SynapseWorker]:
    """Every worker of the plan: the /sync workers, one of each single duty, then the event persisters."""
    counts: dict[WorkerKind, int] = {
        "sync": plan.sync_workers,
        "client_reader": 1,
        "federation_sender": 1,
        "media": 1,
        "pusher": 1,
        "background": 1,
        "event_persister": plan.event_persisters,
    }
    return [SynapseWorker(kind, number) for kind, count in counts.items() for number in range(1, count + 1)]


@dataclass(frozen=True)
class VoiceGrowTuning:
    """MySQL and Redis memory settings sized to their containers."""

    mysql_buffer_pool: str
    mysql_redo_log_capacity: str
    redis_maxmemory: str

    def mysql_memory_needed_mb(self, max_connections: int) -> int:
        """Memory MySQL can use: the buffer pool, each connection's buffers, the server's own.

        A connection allocates its sort, join and read buffers (MySQL's defaults, which the
        program keeps) only while a statement needs them; every allowed connection is counted as
        holding them, the usual worst case.
        """
        connections = max_connections * MYSQL_CONNECTION_BUFFERS_KB / 1024
        return math.ceil(size_mb(self.mysql_buffer_pool) + connections + MYSQL_SERVER_MB)

    def redis_memory_needed_mb(self) -> int:
        """The container Redis needs: maxmemory is at most three quarters of it.

        The last quarter is for the copy-on-write pages of the child Redis forks to save its RDB
        file and rewrite its AOF, client buffers and fragmentation: maxmemory counts none of them.
        """
        return math.ceil(size_mb(self.redis_maxmemory) / REDIS_MAXMEMORY_SHARE)


KERNEL_REPORTED_SHARE = 0.96
"""The share of a host's memory its kernel reports as MemTotal (1967 of 2048 MB on a 2 GB VPS)."""


@dataclass(frozen=True)
class HostSize:
    """A host a profile is sized for: its cores, the memory its kernel reports and the most swap the profile asks to add.

    A VPS sold with 2 GB reports about 1967 MB (MemTotal): the kernel keeps the rest. The
    profiles count 96 % of the size a host is sold with.
    """

    vcpus: int
    memory_mb: int
    swap_mb: int

    @classmethod
    def sold_as(cls, vcpus: int, gigabytes: int) -> HostSize:
        """A host sold with this many cores and gigabytes, asked for as much swap as memory."""
        return cls(vcpus=vcpus, memory_mb=round(gigabytes * 1024 * KERNEL_REPORTED_SHARE), swap_mb=gigabytes * 1024)


@dataclass(frozen=True)
class SizingProfile:
    """Everything a profile decides: one limit per container role plus service tuning.

    `host` is the host the profile is named for, which the stack with the environment's defaults
    fits (its reservations in memory, its limits in memory and swap, its CPU caps in its cores);
    `voicegrow_host` the host that stack needs with VoiceGrow beside Synapse.
    """

    host: HostSize
    voicegrow_host: HostSize
    limits: dict[str, ContainerLimits]
    postgres: PostgresTuning
    synapse: SynapseTuning
    synapse_workers: SynapseWorkerPlan
    voicegrow: VoiceGrowTuning
    metrics_retention_size: str
    """Most disk Prometheus keeps samples in (its --storage.tsdb.retention.size)."""


def limits(role: str, memory_mb: int, reservation_mb: int, cpus: float | None = None) -> ContainerLimits:
    """The limits of a container of `role`, with the role's CPU weight."""
    return ContainerLimits(memory_mb=memory_mb, reservation_mb=reservation_mb, cpu_weight=ROLES[role].cpu_weight, cpus=cpus)


def monitoring_limits(scale: int) -> dict[str, ContainerLimits]:
    """Limits of the monitoring containers; the stores (Prometheus, Loki, Grafana) grow with `scale`.

    Basic monitoring (Prometheus, Alertmanager, node and blackbox exporters) is limited to
    416 MB and reserves 160 MB on the small profile.
    """
    def scaled(role: str, memory_mb: int, cpus: float, reservation_mb: int, grows: bool = False) -> ContainerLimits:
        factor = scale if grows else 1
        return limits(role, memory_mb * factor, reservation_mb * factor, cpus=round(cpus * factor, 2))

    # Capped: a compaction, a query over months or a scrape storm must not take the services' CPU.
    return {
        "prometheus": scaled("prometheus", 256, 0.2, 96, grows=True),
        "alertmanager": scaled("alertmanager", 64, 0.1, 32),
        "node_exporter": scaled("node_exporter", 48, 0.1, 16),
        "blackbox_exporter": scaled("blackbox_exporter", 48, 0.1, 16),
        "dingtalk": scaled("dingtalk", 48, 0.1, 16),
        "grafana": scaled("grafana", 192, 0.2, 96, grows=True),
        "loki": scaled("loki", 256, 0.2, 96, grows=True),
        "alloy": scaled("alloy", 192, 0.1, 64),
        "cadvisor": scaled("cadvisor", 128, 0.1, 48),
        "engine_api": scaled("engine_api", 32, 0.1, 8),
        "postgres_exporter": scaled("postgres_exporter", 48, 0.1, 16),
        "mysql_exporter": scaled("mysql_exporter", 48, 0.1, 16),
        "redis_exporter": scaled("redis_exporter", 48, 0.1, 16),
    }


SMALL = SizingProfile(
    host=HostSize.sold_as(1, 2),
    voicegrow_host=HostSize.sold_as(2, 4),
    limits={
        "postgres": limits("postgres", 384, 256),
        # Reserves what its caches target (cache_target_memory 512M) and the process around them,
        # so that staging's and prod's full monitoring still fits the 2 GB host beside it.
        "synapse": limits("synapse", 1280, 768),
        "synapse_worker": limits("synapse_worker", 512, 128),
        "synapse_redis": limits("synapse_redis", 64, 16),
        "wellknown": limits("wellknown", 32, 16),
        "mysql": limits("mysql", 512, 256),
        "redis": limits("redis", 128, 64),
        "minio": limits("minio", 256, 128),
        "voicegrow_server": limits("voicegrow_server", 1536, 640, cpus=1.0),
        "proxy": limits("proxy", 128, 32),
        "acme": limits("acme", 128, 32, cpus=0.1),
        # The backup job runs pg_dump, mariadb-dump, tar and rclone one at a time.
        "backup": limits("backup", 256, 64, cpus=0.25),
        **monitoring_limits(1),
        # The healer asks the engine for unhealthy containers every few seconds.
        "healer": limits("healer", 64, 16, cpus=0.1),
    },
    # The guide sets shared_buffers 256MB inside a 384 MB container (and the official image
    # ignores it): with sorts and connections on top that invites the OOM killer. A quarter of
    # the limit is PostgreSQL's own advice.
    postgres=PostgresTuning(
        shared_buffers="96MB",
        effective_cache_size="256MB",
        work_mem="4MB",
        maintenance_work_mem="32MB",
        max_connections=20,
    ),
    synapse=SynapseTuning(
        global_cache_factor=0.2,
        event_cache_size=500,
        cache_max_memory="768M",
        cache_target_memory="512M",
        db_pool_min=1,
        db_pool_max=2,
        max_upload_size="8M",
        message_rate_per_second=0.5,
        message_burst=10,
        presence=False,
    ),
    # Redis and MySQL leave a quarter of their container for connections and fragmentation:
    # the guide's maxmemory 512mb in a 512M container would be killed before evicting.
    # One core: workers would only add processes competing for it.
    synapse_workers=SynapseWorkerPlan(default=False, sync_workers=1, event_persisters=0, db_pool_max=2),
    voicegrow=VoiceGrowTuning(mysql_buffer_pool="256M", mysql_redo_log_capacity="128M", redis_maxmemory="96mb"),
    metrics_retention_size="1GB",
)

MEDIUM = SizingProfile(
    host=HostSize.sold_as(2, 4),
    voicegrow_host=HostSize.sold_as(4, 8),
    limits={
        "postgres": limits("postgres", 1024, 512),
        "synapse": limits("synapse", 2560, 1536),
        "synapse_worker": limits("synapse_worker", 512, 128),
        "synapse_redis": limits("synapse_redis", 128, 32),
        "wellknown": limits("wellknown", 32, 16),
        "mysql": limits("mysql", 1024, 512),
        "redis": limits("redis", 256, 128),
        "minio": limits("minio", 512, 256),
        "voicegrow_server": limits("voicegrow_server", 2048, 1024, cpus=1.5),
        "proxy": limits("proxy", 256, 64),
        "acme": limits("acme", 128, 32, cpus=0.1),
        "backup": limits("backup", 384, 128, cpus=0.5),
        **monitoring_limits(2),
        "healer": limits("healer", 64, 16, cpus=0.1),
    },
    postgres=PostgresTuning(
        shared_buffers="256MB",
        effective_cache_size="768MB",
        work_mem="8MB",
        maintenance_work_mem="64MB",
        max_connections=50,
    ),
    synapse=SynapseTuning(
        global_cache_factor=0.5,
        event_cache_size=2000,
        cache_max_memory="1024M",
        cache_target_memory="758M",
        db_pool_min=1,
        db_pool_max=5,
        max_upload_size="50M",
        message_rate_per_second=2.0,
        message_burst=50,
        presence=True,
    ),
    # Measured on two cores, servers and load client on separate cores: 20 rooms x 3 users, p95
    # 4.9-5.4 s without workers, 8.8-10.1 s with; one hot room at parity. Workers cost more
    # than they give on two cores, and their reservations would not fit the 4 GB host.
    synapse_workers=SynapseWorkerPlan(default=False, sync_workers=2, event_persisters=0, db_pool_max=2),
    voicegrow=VoiceGrowTuning(mysql_buffer_pool="640M", mysql_redo_log_capacity="256M", redis_maxmemory="192mb"),
    metrics_retention_size="4GB",
)

LARGE = SizingProfile(
    host=HostSize.sold_as(8, 16),
    voicegrow_host=HostSize.sold_as(8, 16),
    limits={
        "postgres": limits("postgres", 2048, 1024),
        "synapse": limits("synapse", 4096, 2048),
        "synapse_worker": limits("synapse_worker", 768, 256),
        "synapse_redis": limits("synapse_redis", 256, 64),
        "wellknown": limits("wellknown", 32, 16),
        "mysql": limits("mysql", 2048, 1024),
        "redis": limits("redis", 512, 256),
        "minio": limits("minio", 1024, 512),
        "voicegrow_server": limits("voicegrow_server", 4096, 2048, cpus=4.0),
        "proxy": limits("proxy", 512, 128),
        "acme": limits("acme", 128, 32, cpus=0.1),
        "backup": limits("backup", 512, 128, cpus=1.0),
        **monitoring_limits(4),
        "healer": limits("healer", 64, 16, cpus=0.1),
    },
    postgres=PostgresTuning(
        shared_buffers="512MB",
        effective_cache_size="1536MB",
        work_mem="16MB",
        maintenance_work_mem="128MB",
        max_connections=100,
    ),
    synapse=SynapseTuning(
        global_cache_factor=1.0,
        event_cache_size=5000,
        cache_max_memory="2048M",
        cache_target_memory="1536M",
        db_pool_min=2,
        db_pool_max=10,
        max_upload_size="100M",
        message_rate_per_second=5.0,
        message_burst=100,
        presence=True,
    ),
    synapse_workers=SynapseWorkerPlan(default=True, sync_workers=3, event_persisters=2, db_pool_max=3),
    voicegrow=VoiceGrowTuning(mysql_buffer_pool="1G", mysql_redo_log_capacity="512M", redis_maxmemory="384mb"),
    metrics_retention_size="16GB",
)

_SIZE = re.compile(r"^(\d+(\.\d+)?)\s*(k|kb|m|mb|g|gb)$", re.IGNORECASE)


def size_mb(size: str) -> float:
    """A PostgreSQL, MySQL or Redis size ('96MB', '256M', '1G', '96mb') in MB."""
    match = _SIZE.match(size.strip())
    if not match:
        raise ValueError(f"not a size like '256M': {size!r}")
    factor = {"k": 1 / 1024, "m": 1, "g": 1024}[match.group(3)[0].lower()]
    return float(match.group(1)) * factor


# What the memory rules count besides the settings themselves (see the methods above).
POSTGRES_AUTOVACUUM_WORKERS = 3
"""PostgreSQL's autovacuum_max_workers (not changed by the program); each may use maintenance_work_mem."""
POSTGRES_BACKEND_MB = 8
"""A connection's backend process beside work_mem: catalog and plan caches, its stack."""
POSTGRES_SERVER_MB = 64
"""The postmaster, checkpointer, WAL writer and other background processes."""
POSTGRES_OTHER_CONNECTIONS = 3
"""Connections beside Synapse's pool: the backup's pg_dump, the first-deploy bootstrap, an operator's psql."""
MYSQL_CONNECTION_BUFFERS_KB = 256 + 256 + 128 + 256 + 16 + 32
"""sort_buffer_size, join_buffer_size, read_buffer_size, read_rnd_buffer_size, net_buffer_length
and binlog_cache_size at MySQL's defaults."""
MYSQL_SERVER_MB = 64
"""The server's global buffers beside the buffer pool (MySQL 8.4's redo log buffer alone is 64 MB)."""
REDIS_MAXMEMORY_SHARE = 0.75
"""The share of Redis's container its maxmemory may take."""

PROFILES: dict[str, SizingProfile] = {"small": SMALL, "medium": MEDIUM, "large": LARGE}
