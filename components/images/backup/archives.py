"""What the program and the backup image agree on, and the parts of a backup run with no side
effects to speak of: the job file and where the image keeps what it names, archive names,
retention and the manifest.

This module has no imports beyond the standard library: it runs inside the backup image, and
the program imports it to write the job file and to project the archives' size at retention.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

NAME_FORMAT = "backup-%Y%m%dT%H%M%SZ"
NAME_PATTERN = re.compile(r"^backup-(\d{8}T\d{6}Z)(-before-change|-before-restore)?\.tar$")
BEFORE_CHANGE = "before-change"
"""Suffix of the archives a deploy takes before it replaces a container that holds data."""
BEFORE_RESTORE = "before-restore"
"""Suffix of the archives a restore takes of what it is about to replace."""
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


def archive_name(moment: datetime, taken_before: str | None = None) -> str:
    """The archive's file name for a run started at `moment`; one taken before a deploy's change
    or a restore (BEFORE_CHANGE, BEFORE_RESTORE) says so at its end."""
    stem = moment.astimezone(timezone.utc).strftime(NAME_FORMAT)
    return f"{stem}-{taken_before}.tar" if taken_before else f"{stem}.tar"


def archive_time(name: str) -> datetime | None:
    """When the archive with this name was taken, or None when the name is not an archive's."""
    match = NAME_PATTERN.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def remote_path(remote: str, name: str) -> str:
    """`name` under an rclone remote path (`offsite:`, `offsite:backups`, `offsite:/backups/`), one separator between."""
    separator = "" if remote.endswith((":", "/")) else "/"
    return f"{remote}{separator}{name}"


def offsite_name(owner: str, name: str) -> str:
    """The name of archive `name` offsite: its stack first (`selfhosted-prod.backup-...tar`), so two
    stacks writing into one directory never write or count each other's archives."""
    return f"{owner}.{name}"


def listed_names(listing: bytes) -> list[str]:
    """The names in a remote's listing, one a line. A name need not be UTF-8: another stack's
    encrypted name, decrypted with this stack's keys, is bytes at random; it stays (replaced
    characters and all) a name that is not this stack's."""
    return listing.decode(errors="replace").splitlines()


def owned_archives(owner: str, offsite_names: list[str]) -> list[str]:
    """The archive names (as kept locally) of `owner`'s offsite archives among `offsite_names`."""
    prefix = f"{owner}."
    return [name[len(prefix):] for name in offsite_names if name.startswith(prefix) and archive_time(name[len(prefix):])]


def archives_newest_first(names: list[str]) -> list[str]:
    """The archive names among `names`, newest first; other files are ignored."""
    return sorted((name for name in names if archive_time(name) is not None), reverse=True)


def archives_to_prune(names: list[str], now: datetime, keep_days: int, keep_count: int) -> list[str]:
    """Archives beyond the newest `keep_count` or older than `keep_days`; the newest is always kept."""
    archives = archives_newest_first(names)
    cutoff = now - timedelta(days=keep_days)
    pruned = []
    for index, name in enumerate(archives[1:], start=1):
        taken = archive_time(name)
        assert taken is not None
        if index >= keep_count or taken < cutoff:
            pruned.append(name)
    return pruned


@dataclass(frozen=True)
class Retention:
    """How long the copies of one part are kept: the newest `keep_count`, none older than `keep_days`."""

    keep_days: int
    keep_count: int


def archives_no_part_keeps(holdings: dict[str, list[str]], now: datetime, retention: dict[str, Retention]) -> list[str]:
    """The archives to delete: those that no part's retention keeps, newest first.

    `holdings` gives each archive's parts (none for an unreadable archive or one holding only
    the configuration). Each part keeps its copies by its own retention, the newest copy always;
    an archive stays while any part it holds keeps it. The newest archive always stays."""
    names = archives_newest_first(list(holdings))
    kept = set(names[:1])
    for part, rule in retention.items():
        holding = [name for name in names if part in holdings[name]]
        kept.update(set(holding) - set(archives_to_prune(holding, now, rule.keep_days, rule.keep_count)))
    return [name for name in names if name not in kept]


@dataclass(frozen=True)
class PartPlan:
    """How often a part is taken and how long its copies are kept."""

    schedule: str
    """The cron expression the part follows: parts with the same one are taken in the same runs."""
    runs_per_day: float
    retention: Retention


def copies_kept(plan: PartPlan) -> int:
    """The copies of a part retention holds after a run: its runs within keep_days, at most
    keep_count, and at least the newest."""
    # Rounded first: 52 weekly runs in 364 days are exactly one a week, not a hair more.
    runs = math.ceil(round(plan.runs_per_day * plan.retention.keep_days, 6))
    return max(1, min(plan.retention.keep_count, runs))


@dataclass(frozen=True)
class Projection:
    """The archives' size once retention holds all it keeps, part by part."""

    copies: dict[str, int]
    part_bytes: dict[str, int]
    """Each part's copies times its size."""
    run_bytes: int
    """The largest run's archive: it is written before retention deletes the copies it replaces."""

    @property
    def total_bytes(self) -> int:
        """What the archives take at retention, during the largest run."""
        return sum(self.part_bytes.values()) + self.run_bytes

    def described(self, unit: int = 10**9, unit_name: str = "GB") -> str:
        """'synapse 48 x 1.0 GB, media 7 x 10.0 GB, ... + 20.0 GB for a run = 236.0 GB'."""
        parts = ", ".join(
            f"{part} {copies} x {self.part_bytes[part] / copies / unit:.1f} {unit_name}" for part, copies in self.copies.items()
        )
        return f"{parts} + {self.run_bytes / unit:.1f} {unit_name} for a run = {self.total_bytes / unit:.1f} {unit_name}"


def project_retention(plans: dict[str, PartPlan], sizes: dict[str, int]) -> Projection:
    """The archives' size at retention when each part's copy is `sizes[part]` bytes.

    Parts on the same schedule share their archives, and an archive kept for one part keeps the
    others' copies too: each of them counts as many copies as the most any of them keeps."""
    own = {part: copies_kept(plan) for part, plan in plans.items()}
    copies = {
        part: max(own[other] for other, theirs in plans.items() if theirs.schedule == plan.schedule)
        for part, plan in plans.items()
    }
    runs: dict[str, int] = {}
    for part, plan in plans.items():
        runs[plan.schedule] = runs.get(plan.schedule, 0) + sizes.get(part, 0)
    return Projection(
        copies=copies,
        part_bytes={part: copies[part] * sizes.get(part, 0) for part in plans},
        run_bytes=max(runs.values(), default=0),
    )


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks (parts can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def part_entry(path: Path) -> dict[str, Any]:
    """A part's manifest entry: its size and SHA-256."""
    return {"size": path.stat().st_size, "sha256": sha256_file(path)}


def build_manifest(entries: dict[str, dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """The manifest: each part's entry (see part_entry), plus `info`."""
    return {"format": MANIFEST_FORMAT, **info, "parts": entries}


def verify_manifest(manifest: dict[str, Any], parts_dir: Path) -> list[str]:
    """What is wrong with the extracted parts against the manifest (empty when all is well)."""
    if manifest.get("format") != MANIFEST_FORMAT:
        return [f"unknown manifest format {manifest.get('format')!r}"]
    problems = []
    for name, expected in manifest.get("parts", {}).items():
        path = parts_dir / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{name}: size {path.stat().st_size}, manifest says {expected['size']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems


# --- the job file: what the program writes and the backup tool reads ---------------------------

ARCHIVE_DIR = "/backups"
CONFIG_DIR = "/etc/backup"
JOB_PATH = f"{CONFIG_DIR}/backup.json"
PGPASS_PATH = f"{CONFIG_DIR}/pgpass"
MYSQL_CLIENT_PATH = f"{CONFIG_DIR}/mysql.cnf"
RCLONE_PATH = f"{CONFIG_DIR}/rclone.conf"
OFFSITE_RCLONE_PATH = f"{CONFIG_DIR}/offsite-rclone.conf"
SYNAPSE_ADMIN_PASSWORD_PATH = f"{CONFIG_DIR}/synapse-admin-password"
CONFIGS_DIR = f"{CONFIG_DIR}/configs"
SYNAPSE_DATA_DIR = "/synapse-data"
MINIO_REMOTE = "voicegrow-minio"
METRICS_PORT = 9469


@dataclass(frozen=True, kw_only=True)
class Postgres:
    host: str
    port: int
    user: str
    database: str
    passfile: str = PGPASS_PATH


@dataclass(frozen=True, kw_only=True)
class Mysql:
    defaults_file: str = MYSQL_CLIENT_PATH
    database: str


@dataclass(frozen=True, kw_only=True)
class Bucket:
    rclone_config: str = RCLONE_PATH
    remote: str = MINIO_REMOTE
    bucket: str

    @property
    def path(self) -> str:
        return f"{self.remote}:{self.bucket}"


@dataclass(frozen=True, kw_only=True)
class Offsite:
    rclone_config: str = OFFSITE_RCLONE_PATH
    remote: str
    """Where rclone writes: the stack's directory, or the crypt remote that encrypts into it."""
    directory: str
    """The stack's directory on the operator's remote, for messages."""
    encrypted: bool
    owner: str
    """The first word of this stack's offsite archive names (`selfhosted-prod`)."""
    legacy_remote: str
    """Where archives were copied, unencrypted and under their local names, before `directory` existed."""
    keep_days: int
    keep_count: int

    def path(self, name: str) -> str:
        """The remote path of the archive `name` (its local name)."""
        return remote_path(self.remote, offsite_name(self.owner, name))

    def described(self) -> str:
        return f"{self.directory}{' (encrypted)' if self.encrypted else ''}"


@dataclass(frozen=True, kw_only=True)
class MediaPurge:
    """Synapse's cached remote media, purged through its admin API on a schedule of the backup container."""

    schedule: str
    max_age_days: int
    synapse_url: str
    admin_user: str
    password_file: str = SYNAPSE_ADMIN_PASSWORD_PATH


@dataclass(frozen=True, kw_only=True)
class StateCompression:
    """Synapse's state tables, compressed by synapse_auto_compressor on a schedule of the backup container."""

    schedule: str
    chunk_size: int
    number_of_chunks: int
    levels: str


# The job file's sections, each read into its dataclass (null where the stack lacks the service).
_SECTIONS: dict[str, type] = {
    "postgres": Postgres, "mysql": Mysql, "bucket": Bucket, "offsite": Offsite,
    "media_purge": MediaPurge, "state_compression": StateCompression,
}
_DIRECTORIES = ("archive_dir", "synapse_data", "configs_dir")
JobType = TypeVar("JobType", bound="JobDocument")


@dataclass(frozen=True, kw_only=True)
class JobDocument:
    """The job file (JOB_PATH): what to back up, where to, and how long to keep it. It holds no secret."""

    stack: str
    schedule: str
    timezone: str = "UTC"
    part_schedules: dict[str, str] = field(default_factory=dict)
    """Parts backed up on a schedule of their own; the others follow `schedule`."""
    retention: dict[str, Retention]
    """Each part's retention."""
    timeout_seconds: int
    archive_dir: Path = Path(ARCHIVE_DIR)
    postgres: Postgres | None = None
    mysql: Mysql | None = None
    synapse_data: Path | None = None
    bucket: Bucket | None = None
    configs_dir: Path | None = None
    offsite: Offsite | None = None
    services: dict[str, list[str]] = field(default_factory=dict)
    """Containers writing each part's data, stopped while it is restored."""
    metrics_port: int | None = None
    media_purge: MediaPurge | None = None
    state_compression: StateCompression | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str) + "\n"

    @classmethod
    def from_json(cls: type[JobType], text: str) -> JobType:
        document: dict[str, Any] = json.loads(text)
        values: dict[str, Any] = {**document, "retention": {part: Retention(**rule) for part, rule in document["retention"].items()}}
        for key, section in _SECTIONS.items():
            values[key] = section(**document[key]) if document.get(key) else None
        for key in _DIRECTORIES:
            values[key] = Path(document[key]) if document.get(key) else None
        return cls(**values)
