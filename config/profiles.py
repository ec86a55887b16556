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

ProfileName = Literal["small", "medium", "large"]


@dataclass(frozen=True)
class ContainerLimits:
    """Memory (MB) and CPU limits of one container, with the memory it reserves."""

    memory_mb: int
    cpus: float
    reservation_mb: int


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


@dataclass(frozen=True)
class SizingProfile:
    """Everything a profile decides: one limit per container role plus service tuning."""

    limits: dict[str, ContainerLimits]
    postgres: PostgresTuning
    synapse: SynapseTuning
    voicegrow: VoiceGrowTuning
    metrics_retention_size: str
    """Most disk Prometheus keeps samples in (its --storage.tsdb.retention.size)."""


def monitoring_limits(scale: int) -> dict[str, ContainerLimits]:
    """Limits of the monitoring containers; the stores (Prometheus, Loki, Grafana) grow with `scale`.

    Basic monitoring (Prometheus, Alertmanager, node and blackbox exporters) is limited to
    416 MB and reserves 160 MB on the small profile.
    """
    def limits(memory_mb: int, cpus: float, reservation_mb: int, grows: bool = False) -> ContainerLimits:
        factor = scale if grows else 1
        return ContainerLimits(memory_mb=memory_mb * factor, cpus=round(cpus * factor, 2), reservation_mb=reservation_mb * factor)

    return {
        "prometheus": limits(256, 0.2, 96, grows=True),
        "alertmanager": limits(64, 0.1, 32),
        "node_exporter": limits(48, 0.1, 16),
        "blackbox_exporter": limits(48, 0.1, 16),
        "dingtalk": limits(48, 0.1, 16),
        "grafana": limits(192, 0.2, 96, grows=True),
        "loki": limits(256, 0.2, 96, grows=True),
        "alloy": limits(192, 0.1, 64),
        "cadvisor": limits(128, 0.1, 48),
        "postgres_exporter": limits(48, 0.1, 16),
        "mysql_exporter": limits(48, 0.1, 16),
        "redis_exporter": limits(48, 0.1, 16),
    }


SMALL = SizingProfile(
    limits={
        "postgres": ContainerLimits(memory_mb=384, cpus=0.3, reservation_mb=256),
        "synapse": ContainerLimits(memory_mb=1280, cpus=0.6, reservation_mb=1024),
        "wellknown": ContainerLimits(memory_mb=32, cpus=0.1, reservation_mb=16),
        "mysql": ContainerLimits(memory_mb=512, cpus=0.5, reservation_mb=256),
        "redis": ContainerLimits(memory_mb=128, cpus=0.2, reservation_mb=64),
        "minio": ContainerLimits(memory_mb=256, cpus=0.3, reservation_mb=128),
        "voicegrow_server": ContainerLimits(memory_mb=1536, cpus=1.0, reservation_mb=768),
        "proxy": ContainerLimits(memory_mb=128, cpus=0.25, reservation_mb=32),
        "acme": ContainerLimits(memory_mb=128, cpus=0.1, reservation_mb=32),
        # The backup job runs pg_dump, mariadb-dump, tar and rclone one at a time.
        "backup": ContainerLimits(memory_mb=256, cpus=0.25, reservation_mb=64),
        **monitoring_limits(1),
        # The healer asks the engine for unhealthy containers every few seconds.
        "healer": ContainerLimits(memory_mb=64, cpus=0.1, reservation_mb=16),
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
    voicegrow=VoiceGrowTuning(mysql_buffer_pool="256M", mysql_redo_log_capacity="128M", redis_maxmemory="96mb"),
    metrics_retention_size="1GB",
)

MEDIUM = SizingProfile(
    limits={
        "postgres": ContainerLimits(memory_mb=1024, cpus=0.5, reservation_mb=512),
        "synapse": ContainerLimits(memory_mb=2560, cpus=1.2, reservation_mb=1536),
        "wellknown": ContainerLimits(memory_mb=32, cpus=0.1, reservation_mb=16),
        "mysql": ContainerLimits(memory_mb=1024, cpus=0.5, reservation_mb=512),
        "redis": ContainerLimits(memory_mb=256, cpus=0.25, reservation_mb=128),
        "minio": ContainerLimits(memory_mb=512, cpus=0.5, reservation_mb=256),
        "voicegrow_server": ContainerLimits(memory_mb=2048, cpus=1.5, reservation_mb=1024),
        "proxy": ContainerLimits(memory_mb=256, cpus=0.5, reservation_mb=64),
        "acme": ContainerLimits(memory_mb=128, cpus=0.1, reservation_mb=32),
        "backup": ContainerLimits(memory_mb=384, cpus=0.5, reservation_mb=128),
        **monitoring_limits(2),
        "healer": ContainerLimits(memory_mb=64, cpus=0.1, reservation_mb=16),
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
    voicegrow=VoiceGrowTuning(mysql_buffer_pool="640M", mysql_redo_log_capacity="256M", redis_maxmemory="192mb"),
    metrics_retention_size="4GB",
)

LARGE = SizingProfile(
    limits={
        "postgres": ContainerLimits(memory_mb=2048, cpus=1.0, reservation_mb=1024),
        "synapse": ContainerLimits(memory_mb=4096, cpus=2.0, reservation_mb=2048),
        "wellknown": ContainerLimits(memory_mb=32, cpus=0.1, reservation_mb=16),
        "mysql": ContainerLimits(memory_mb=2048, cpus=2.0, reservation_mb=1024),
        "redis": ContainerLimits(memory_mb=512, cpus=1.0, reservation_mb=256),
        "minio": ContainerLimits(memory_mb=1024, cpus=2.0, reservation_mb=512),
        "voicegrow_server": ContainerLimits(memory_mb=4096, cpus=4.0, reservation_mb=2048),
        "proxy": ContainerLimits(memory_mb=512, cpus=1.0, reservation_mb=128),
        "acme": ContainerLimits(memory_mb=128, cpus=0.1, reservation_mb=32),
        "backup": ContainerLimits(memory_mb=512, cpus=1.0, reservation_mb=128),
        **monitoring_limits(4),
        "healer": ContainerLimits(memory_mb=64, cpus=0.1, reservation_mb=16),
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
