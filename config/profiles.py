"""Named sizing profiles: container limits and the tuning that goes with them.

The values are data (profiles.yaml, which says what each profile is for); this module names
their fields, checks the file and holds the memory rules the values must satisfy.
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from config.data_files import load_dataclass
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


@dataclass(frozen=True)
class RoleLimits:
    """One role's limits as profiles.yaml writes them (its CPU weight is the registry's); a
    monitoring store's (`grows`) are the small profile's and scale with the profile."""

    memory_mb: int
    reservation_mb: int
    cpus: float | None = None
    grows: bool = False

    def of(self, role: str, scale: int = 1) -> ContainerLimits:
        """The limits of a container of `role` on a profile of this monitoring `scale`."""
        factor = scale if self.grows else 1
        cpus = None if self.cpus is None else round(self.cpus * factor, 2)
        return ContainerLimits(
            memory_mb=self.memory_mb * factor,
            reservation_mb=self.reservation_mb * factor,
            cpu_weight=ROLES[role].cpu_weight,
            cpus=cpus,
        )


@dataclass(frozen=True)
class SoldHost:
    """A host as profiles.yaml names it: the cores and gigabytes it is sold with."""

    vcpus: int
    gigabytes: int


PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
_PROFILE_FIELDS = (
    "host", "voicegrow_host", "monitoring_scale", "limits", "postgres", "synapse", "synapse_workers", "voicegrow",
    "metrics_retention_size",
)


def _profile(values: Any, monitoring: dict[str, RoleLimits], where: str) -> SizingProfile:
    if not isinstance(values, dict) or sorted(values) != sorted(_PROFILE_FIELDS):
        raise ValueError(f"{where}: a profile has exactly the fields {', '.join(_PROFILE_FIELDS)}")
    hosts = {key: load_dataclass(SoldHost, values[key], f"{where}.{key}") for key in ("host", "voicegrow_host")}
    roles = {role: load_dataclass(RoleLimits, rule, f"{where}.limits.{role}") for role, rule in values["limits"].items()}
    scale = values["monitoring_scale"]
    return SizingProfile(
        host=HostSize.sold_as(hosts["host"].vcpus, hosts["host"].gigabytes),
        voicegrow_host=HostSize.sold_as(hosts["voicegrow_host"].vcpus, hosts["voicegrow_host"].gigabytes),
        limits={
            **{role: rule.of(role) for role, rule in roles.items()},
            **{role: rule.of(role, scale) for role, rule in monitoring.items()},
        },
        postgres=load_dataclass(PostgresTuning, values["postgres"], f"{where}.postgres"),
        synapse=load_dataclass(SynapseTuning, values["synapse"], f"{where}.synapse"),
        synapse_workers=load_dataclass(SynapseWorkerPlan, values["synapse_workers"], f"{where}.synapse_workers"),
        voicegrow=load_dataclass(VoiceGrowTuning, values["voicegrow"], f"{where}.voicegrow"),
        metrics_retention_size=str(values["metrics_retention_size"]),
    )


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, SizingProfile]:
    """Every profile from the data file, checked: each field of each profile, of its type, and nothing else."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = set(typing.get_args(ProfileName))
    if sorted(document) != ["monitoring", "profiles"] or set(document["profiles"]) != names:
        raise ValueError(f"{path.name} must hold `monitoring` and `profiles` with exactly {sorted(names)}")
    monitoring = {
        role: load_dataclass(RoleLimits, rule, f"{path.name}: monitoring.{role}") for role, rule in document["monitoring"].items()
    }
    return {name: _profile(values, monitoring, f"{path.name}: profiles.{name}") for name, values in document["profiles"].items()}


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

PROFILES: dict[str, SizingProfile] = load_profiles()
SMALL, MEDIUM, LARGE = PROFILES["small"], PROFILES["medium"], PROFILES["large"]
