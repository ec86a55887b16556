"""backupctl: the backup container's scheduler, backup run, restore and health check.

    backupctl schedule                  run backups on the schedules (the container's main process)
    backupctl now [--only PARTS] [--before-change]
                                        take a backup now (also installed as `backup-now`); a deploy
                                        passes --before-change: backup-...Z-before-change.tar
    backupctl list [--offsite]          archives, newest first (--offsite: this stack's offsite copies)
    backupctl fetch [ARCHIVE|latest]    copy an archive from the offsite copy (decrypted) into the
                                        archive directory and check it; print its name
    backupctl verify [ARCHIVE|latest]   check an archive against its manifest; print its name
    backupctl plan [ARCHIVE|latest] [--only PARTS]
                                        check the archives a restore reads; print each with its parts
    backupctl restore [ARCHIVE|latest] [--only PARTS] [--without-safety-copy]
                                        restore (the services using the data must be stopped),
                                        after saving what it replaces in backup-...Z-before-restore.tar
                                        (--without-safety-copy: no way back; for a broken database)
    backupctl services [--only PARTS]   containers to stop while restoring, one per line
    backupctl purge-media               purge Synapse's cached remote media not accessed for the
                                        job's media_purge max_age_days (the admin API, as its admin)
    backupctl compress-state            compress Synapse's state tables (synapse_auto_compressor)
    backupctl health                    exit 0 while the last success is recent enough
    backupctl status                    the last run, as JSON
    backupctl metrics                   the last run and the archive disk, as Prometheus metrics
                                        (the scheduler also serves them on the job's metrics_port),
                                        with what the archives will take at retention

PARTS is a comma-separated list of synapse (its database and signing key: the data volume
without the media store), media (Synapse's media store), mysql and bucket; without --only, every
part of the stack. A part may have a schedule of its own (the job's part_schedules), so its newest
copy may sit in another archive than the others': `latest` means, for each part, the newest
archive that holds it. An archive of the old layout (one synapse-data.tar.gz with the media
store inside) gives synapse the volume without the media store and media the media store.

Each part has its own retention (the job's retention: keep_days and keep_count); an archive is
deleted only when no part it holds keeps it.

Every run is online: PostgreSQL and MySQL are dumped over the network in one transaction each,
files and objects are copied while the services keep running. The job is described by a JSON
file the deployment renders (`$BACKUP_CONFIG`, default /etc/backup/backup.json).
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import http.server
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from archives import (
    BEFORE_CHANGE,
    BEFORE_RESTORE,
    JOB_PATH,
    MANIFEST,
    Bucket,
    JobDocument,
    MediaPurge,
    Mysql,
    Offsite,
    PartPlan,
    Postgres,
    archive_name,
    archive_time,
    archives_newest_first,
    archives_no_part_keeps,
    archives_to_prune,
    build_manifest,
    listed_names,
    owned_archives,
    part_entry,
    project_retention,
    remote_path,
    verify_manifest,
)
from cron import CronSchedule

STATUS_FILE = ".status.json"
LOCK_FILE = ".lock"
WORK_PREFIX = ".work-"
CHUNK = 1 << 20
# Files Synapse rewrites on every start: restoring them would only confuse it.
SYNAPSE_DATA_EXCLUDES = ("./homeserver.pid",)
MEDIA_STORE = "media_store"
"""Synapse's media_store_path inside its data volume (components/rendering/synapse.py)."""
OLD_SYNAPSE_DATA = "synapse-data.tar.gz"
"""The old layout's one file for Synapse's whole data volume, media store included."""


class BackupError(Exception):
    """A step failed; the message says which and why."""


# --- the job ------------------------------------------------------------------------------------


class Job(JobDocument):
    """The job file, with what the scheduler and the commands work out from it."""

    def parts(self) -> list[str]:
        """The parts this job backs up and restores, in restore order."""
        return list(dict.fromkeys(part.group for part in PARTS if part.group is not None and part.enabled(self)))

    def main_schedule(self) -> CronSchedule:
        return CronSchedule.parse(self.schedule, self.timezone)

    def schedules(self) -> list[tuple[CronSchedule, list[str]]]:
        """Each schedule with the parts it backs up; the main one also takes the rendered configuration."""
        own = {part: expression for part, expression in self.part_schedules.items() if part in self.parts()}
        plans = [(self.main_schedule(), [part for part in self.parts() if part not in own])]
        plans += [(CronSchedule.parse(expression, self.timezone), [part]) for part, expression in own.items()]
        return plans

    def part_plans(self, at: datetime) -> dict[str, PartPlan]:
        """Each part with the schedule it follows and its retention."""
        return {
            part: PartPlan(schedule.expression, schedule.runs_per_day(at), self.retention[part])
            for schedule, parts in self.schedules()
            for part in parts
        }

    def next_run(self, at: datetime) -> tuple[datetime, list[str] | None]:
        """When the next scheduled run starts and its parts (None: every part, as `now` takes them)."""
        due = min(schedule.next_after(at) for schedule, _ in self.schedules())
        parts = [part for schedule, parts in self.schedules() if schedule.next_after(at) == due for part in parts]
        return due, (None if set(parts) == set(self.parts()) else parts)

    def maintenance(self) -> list[tuple[str, list[str]]]:
        """The scheduled maintenance beside the backups: each cron expression with its backupctl command."""
        tasks = []
        if self.media_purge is not None:
            tasks.append((self.media_purge.schedule, ["purge-media"]))
        if self.state_compression is not None:
            tasks.append((self.state_compression.schedule, ["compress-state"]))
        return tasks

    def next_tasks(self, at: datetime) -> tuple[datetime, list[list[str]]]:
        """When the scheduler next has work, and the backupctl commands due then (the backup first)."""
        backup_due, parts = self.next_run(at)
        upcoming = [(backup_due, ["now", *(["--only", ",".join(parts)] if parts is not None else [])])]
        upcoming += [(CronSchedule.parse(expression, self.timezone).next_after(at), task) for expression, task in self.maintenance()]
        due = min(moment for moment, _ in upcoming)
        return due, [task for moment, task in upcoming if moment == due]

    @classmethod
    def load(cls, path: str) -> Job:
        return cls.from_json(Path(path).read_text())


# --- logging and commands -----------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(timezone.utc)


def log(message: str) -> None:
    """One line on stderr; a run started by hand (docker exec) also goes to the container's log."""
    line = f"{now().strftime('%Y-%m-%dT%H:%M:%SZ')} backup: {message}\n"
    sys.stderr.write(line)
    sys.stderr.flush()
    container_log = os.environ.get("BACKUP_CONTAINER_LOG")
    if container_log and os.getpid() != 1 and not os.environ.get("BACKUP_SCHEDULED"):
        with contextlib.suppress(OSError), open(container_log, "a", encoding="utf-8") as stream:
            stream.write(line)


def run(argv: list[str], *, env: dict[str, str] | None = None, feed: IO[bytes] | None = None,
        sink: IO[bytes] | None = None, ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run a command, streaming `feed` to its stdin or its stdout to `sink`.

    BackupError with the end of its stderr when it exits with a code not in `ok_codes`.
    """
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if sink is not None else subprocess.DEVNULL,
            stderr=errors,
            env={**os.environ, **(env or {})},
        )
        try:
            if feed is not None:
                assert process.stdin is not None
                with process.stdin:
                    shutil.copyfileobj(feed, process.stdin, CHUNK)
            if sink is not None:
                assert process.stdout is not None
                shutil.copyfileobj(process.stdout, sink, CHUNK)
            status = process.wait()
        except BrokenPipeError:
            status = process.wait()  # the command quit early: its status and message say why
        except BaseException:
            # Interrupted (the run's deadline, a signal): the command must not outlive the run.
            process.kill()
            process.wait()
            raise
        errors.seek(0)
        text = errors.read().decode(errors="replace").strip()
    if status not in ok_codes:
        raise BackupError(f"{argv[0]} exited with status {status}: {text[-2000:] or 'no message'}")
    if text and status != 0:
        log(f"{argv[0]} (status {status}): {text[-500:]}")
    return status


def first_line(argv: list[str]) -> str:
    """A tool's version line, for the manifest ('unavailable' when the tool is missing)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unavailable"


@contextlib.contextmanager
def deadline(seconds: int, what: str) -> Iterator[None]:
    """Raise BackupError wherever the block is when it has run for `seconds` (main thread only)."""

    def expire(signum: int, frame: Any) -> None:
        raise BackupError(f"{what} did not finish within {seconds} s and was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BackupError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(2)


def succeeds(argv: list[str], env: dict[str, str] | None = None) -> bool:
    result = subprocess.run(argv, capture_output=True, env={**os.environ, **(env or {})}, check=False)
    return result.returncode == 0


# --- the parts of an archive ---------------------------------------------------------------------


def _pg_args(pg: Postgres) -> list[str]:
    return ["--host", pg.host, "--port", str(pg.port), "--username", pg.user, "--no-password"]


def _pg_env(pg: Postgres) -> dict[str, str]:
    return {"PGPASSFILE": pg.passfile}


def _wait_for_postgres(pg: Postgres) -> None:
    wait_until(lambda: succeeds(["pg_isready", "--host", pg.host, "--port", str(pg.port), "--dbname", pg.database]), "PostgreSQL")


def dump_postgres(job: Job, target: Path, work: Path) -> None:
    """pg_dump in custom format: compressed, consistent (one snapshot), restorable selectively."""
    assert job.postgres is not None
    pg = job.postgres
    run(["pg_dump", "--format=custom", *_pg_args(pg), "--dbname", pg.database, "--file", str(target)], env=_pg_env(pg))


def restore_postgres(job: Job, source: Path, work: Path) -> None:
    """Drop the database and recreate it from the dump with its original encoding and collation."""
    assert job.postgres is not None
    pg = job.postgres
    _wait_for_postgres(pg)
    # --force ends leftover sessions; from the maintenance database, as the owner.
    run(["dropdb", "--if-exists", "--force", *_pg_args(pg), "--maintenance-db", "postgres", pg.database], env=_pg_env(pg))
    run(["pg_restore", "--create", "--exit-on-error", *_pg_args(pg), "--dbname", "postgres", str(source)], env=_pg_env(pg))


def _mysql_ready(my: Mysql) -> bool:
    return succeeds(["mariadb-admin", f"--defaults-extra-file={my.defaults_file}", "ping"])


def dump_mysql(job: Job, target: Path, work: Path) -> None:
    """mariadb-dump in one transaction (InnoDB: no locks held), gzip-compressed."""
    assert job.mysql is not None
    my = job.mysql
    argv = [
        "mariadb-dump", f"--defaults-extra-file={my.defaults_file}",
        "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--no-tablespaces",
        # The dump drops and recreates the database: a restore leaves no row it did not hold.
        "--add-drop-database", "--databases", my.database,
    ]
    with gzip.open(target, "wb", compresslevel=6) as compressed:
        run(argv, sink=compressed)


DEFINER_CLAUSE = re.compile(rb"DEFINER=`(?:[^`]|``)*`@`(?:[^`]|``)*`")


class WithoutDefiners(io.RawIOBase):
    """A dump's SQL with the DEFINER clauses of its views, triggers, routines and events removed,
    so that the account restoring it becomes their definer: naming another account (root, who
    ran the image's init scripts) needs a privilege as wide as root's. Rows (the lines of INSERT
    statements, one statement a line in a dump) pass untouched."""

    def __init__(self, dump: IO[bytes]) -> None:
        super().__init__()
        self._lines = iter(dump)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            line = next(self._lines, None)
            if line is None:
                return 0
            self._pending = line if line.startswith(b"INSERT INTO ") else DEFINER_CLAUSE.sub(b"", line)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def restore_mysql(job: Job, source: Path, work: Path) -> None:
    assert job.mysql is not None
    my = job.mysql
    wait_until(lambda: _mysql_ready(my), "MySQL")
    with gzip.open(source, "rb") as compressed:
        run(["mariadb", f"--defaults-extra-file={my.defaults_file}"], feed=io.BufferedReader(WithoutDefiners(compressed), CHUNK))


def _synapse_media(job: Job) -> Path:
    assert job.synapse_data is not None
    return job.synapse_data / MEDIA_STORE


def _emptied_media_store(job: Job) -> Path:
    """The media store, emptied; created as its data volume is (owner and mode) when missing,
    so that Synapse can write into it."""
    assert job.synapse_data is not None
    media = _synapse_media(job)
    if media.is_dir():
        _empty_directory(media)
    else:
        volume = job.synapse_data.stat()
        media.mkdir()
        os.chown(media, volume.st_uid, volume.st_gid)
        media.chmod(stat.S_IMODE(volume.st_mode))
    return media


def dump_synapse_files(job: Job, target: Path, work: Path) -> None:
    """Synapse's data volume without its media store: the signing key and what else Synapse keeps there.

    Numeric owners, so the restore gives Synapse's user its files back."""
    assert job.synapse_data is not None
    excludes = [f"--exclude={pattern}" for pattern in (*SYNAPSE_DATA_EXCLUDES, f"./{MEDIA_STORE}")]
    # Status 1: a file changed while it was read; the rest is complete.
    run(["tar", "--create", "--gzip", "--numeric-owner", *excludes, "--file", str(target),
         "--directory", str(job.synapse_data), "."], ok_codes=(0, 1))


def restore_synapse_files(job: Job, source: Path, work: Path) -> None:
    """Replace the data volume's content but the media store (a fresh volume holds a new, wrong signing key).

    Also reads the old layout's synapse-data.tar.gz, whose media store is left to the media part."""
    assert job.synapse_data is not None
    for child in job.synapse_data.iterdir():
        if child.name != MEDIA_STORE:
            _remove(child)
    run(["tar", "--extract", "--gzip", "--numeric-owner", "--same-permissions", f"--exclude=./{MEDIA_STORE}",
         "--file", str(source), "--directory", str(job.synapse_data)])


def dump_synapse_media(job: Job, target: Path, work: Path) -> None:
    """Synapse's media store; an empty archive while Synapse has stored no media yet."""
    media = _synapse_media(job)
    # Status 1: a file changed while it was read (a thumbnail being written); the rest is complete.
    contents = ["--directory", str(media), "."] if media.is_dir() else ["--files-from", "/dev/null"]
    run(["tar", "--create", "--gzip", "--numeric-owner", "--file", str(target), *contents], ok_codes=(0, 1))


def restore_synapse_media(job: Job, source: Path, work: Path) -> None:
    """Make the media store hold exactly the archived media."""
    media = _emptied_media_store(job)
    run(["tar", "--extract", "--gzip", "--numeric-owner", "--same-permissions", "--file", str(source),
         "--directory", str(media)])


def restore_old_synapse_media(job: Job, source: Path, work: Path) -> None:
    """The media store out of the old layout's synapse-data.tar.gz, which holds the whole data volume."""
    assert job.synapse_data is not None
    _emptied_media_store(job)
    try:
        run(["tar", "--extract", "--gzip", "--numeric-owner", "--same-permissions", "--file", str(source),
             "--directory", str(job.synapse_data), f"./{MEDIA_STORE}"])
    except BackupError as error:
        # Taken before Synapse had stored any media: there is none to bring back.
        if f"./{MEDIA_STORE}: Not found in archive" not in str(error):
            raise
        log(f"{source.name} holds no media store: the media store is left empty")


def _bucket_flags(bucket: Bucket) -> list[str]:
    # MinIO is on the stack network: rclone's ten low-level retries, meant for remotes across the
    # internet, only delay the failure when it is down (130 s instead of 1.5 s, measured).
    return ["--config", bucket.rclone_config, "--low-level-retries", "3"]


def dump_bucket(job: Job, target: Path, work: Path) -> None:
    """Every object of the bucket, copied with rclone's S3 backend, then packed."""
    assert job.bucket is not None
    mirror = work / "bucket"
    mirror.mkdir()
    run(["rclone", "copy", *_bucket_flags(job.bucket), job.bucket.path, str(mirror)])
    run(["tar", "--create", "--gzip", "--file", str(target), "--directory", str(mirror), "."])
    shutil.rmtree(mirror)


def restore_bucket(job: Job, source: Path, work: Path) -> None:
    """Make the bucket hold exactly the archived objects (sync deletes newer ones)."""
    assert job.bucket is not None
    mirror = work / "bucket"
    mirror.mkdir()
    run(["tar", "--extract", "--gzip", "--file", str(source), "--directory", str(mirror)])
    run(["rclone", "sync", *_bucket_flags(job.bucket), str(mirror), job.bucket.path])
    shutil.rmtree(mirror)


def dump_configs(job: Job, target: Path, work: Path) -> None:
    """The configuration the deployment rendered, for reference (a redeploy renders it again)."""
    assert job.configs_dir is not None
    run(["tar", "--create", "--gzip", "--file", str(target), "--directory", str(job.configs_dir), "."])


@dataclass(frozen=True)
class Part:
    """One file in the archive: how it is taken, how it is put back, and whether this job has it."""

    name: str
    dump: Callable[[Job, Path, Path], None] | None
    """None: a file of an old layout, read but no longer written."""
    restore: Callable[[Job, Path, Path], None] | None
    """None: kept for reference only."""
    enabled: Callable[[Job], bool]
    group: str | None = None
    """The part a run or restore can be limited to (--only); None: in every archive, for reference."""


def _has_synapse_data(job: Job) -> bool:
    return job.synapse_data is not None


# What a run writes, in archive order.
PARTS = (
    Part("synapse-postgres.pgdump", dump_postgres, restore_postgres, lambda job: job.postgres is not None, group="synapse"),
    Part("voicegrow-mysql.sql.gz", dump_mysql, restore_mysql, lambda job: job.mysql is not None, group="mysql"),
    Part("synapse-files.tar.gz", dump_synapse_files, restore_synapse_files, _has_synapse_data, group="synapse"),
    Part("synapse-media.tar.gz", dump_synapse_media, restore_synapse_media, _has_synapse_data, group="media"),
    Part("voicegrow-bucket.tar.gz", dump_bucket, restore_bucket, lambda job: job.bucket is not None, group="bucket"),
    # The deployment renders the configuration again; the copy is for reading, not restoring.
    Part("configs.tar.gz", dump_configs, None, lambda job: job.configs_dir is not None),
)
_WRITTEN = {part.name: part for part in PARTS}

# What a restore reads, in restore order: databases first, then the files and objects that rows
# refer to. The old layout's synapse-data.tar.gz serves two parts: synapse takes the volume
# without the media store, media takes the media store.
RESTORE_ORDER = (
    _WRITTEN["synapse-postgres.pgdump"],
    _WRITTEN["voicegrow-mysql.sql.gz"],
    _WRITTEN["synapse-files.tar.gz"],
    Part(OLD_SYNAPSE_DATA, None, restore_synapse_files, _has_synapse_data, group="synapse"),
    _WRITTEN["synapse-media.tar.gz"],
    Part(OLD_SYNAPSE_DATA, None, restore_old_synapse_media, _has_synapse_data, group="media"),
    _WRITTEN["voicegrow-bucket.tar.gz"],
)

SIZED_AS = {**{part.name: part.group for part in PARTS if part.group is not None}, OLD_SYNAPSE_DATA: "media"}
"""The part each file's size counts for; the old layout's whole data volume is almost all media."""


# --- archives -----------------------------------------------------------------------------------


@contextlib.contextmanager
def locked(job: Job) -> Iterator[None]:
    """One backup or restore at a time; a second waits for the first."""
    job.archive_dir.mkdir(parents=True, exist_ok=True)
    with open(job.archive_dir / LOCK_FILE, "a", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another backup or restore is running: waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _empty_directory(path: Path) -> None:
    for child in path.iterdir():
        _remove(child)


def _remove_leftovers(job: Job) -> None:
    """Work directories and partial archives of runs that were killed."""
    for child in job.archive_dir.iterdir():
        if child.name.startswith(WORK_PREFIX):
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.endswith(".partial"):
            child.unlink()


def write_archive(target: Path, work: Path, parts: list[Part], job: Job, started_at: datetime) -> None:
    """An uncompressed tar (the parts are compressed): each part, then manifest.json.

    Each part goes into the archive as soon as it is dumped and is deleted from `work` then, so a
    run needs room for the archive and its largest part, not twice the archive.
    """
    if not parts:
        raise BackupError("the job has nothing to back up")
    entries = {}
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        for part in parts:
            started = time.monotonic()
            path = work / part.name
            assert part.dump is not None, f"{part.name} is read, no longer written"
            part.dump(job, path, work)
            entries[part.name] = part_entry(path)
            archive.add(path, arcname=part.name, recursive=False)
            path.unlink()
            log(f"{part.name}: {entries[part.name]['size'] / 1e6:.1f} MB in {time.monotonic() - started:.1f} s")
        data = json.dumps(build_manifest(entries, _manifest_info(job, started_at)), indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        archive.addfile(info, io.BytesIO(data))
    with open(target, "rb") as stream:
        os.fsync(stream.fileno())


def read_manifest(archive_path: Path) -> dict[str, Any]:
    with tarfile.open(archive_path, "r") as archive:
        member = archive.extractfile(MANIFEST)
        if member is None:
            raise BackupError(f"{archive_path.name} has no {MANIFEST}")
        return json.loads(member.read())


def extract_archive(archive_path: Path, work: Path) -> dict[str, Any]:
    """Extract the manifest and the parts it lists (nothing else, no paths) and check them."""
    try:
        manifest = read_manifest(archive_path)
        wanted = set(manifest.get("parts", {}))
        if any("/" in name or name.startswith(".") for name in wanted):
            raise BackupError(f"{archive_path.name} names parts outside its own directory")
        with tarfile.open(archive_path, "r") as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    source = archive.extractfile(member)
                    assert source is not None
                    with open(work / member.name, "wb") as target:
                        shutil.copyfileobj(source, target, CHUNK)
    except (tarfile.TarError, KeyError, json.JSONDecodeError) as error:
        raise BackupError(f"{archive_path.name} is not a readable archive: {error}") from error
    problems = verify_manifest(manifest, work)
    if problems:
        raise BackupError(f"{archive_path.name} does not match its manifest: " + "; ".join(problems))
    return manifest


def resolve_archive(job: Job, selector: str) -> Path:
    """An archive by name (or path inside the archive directory), or the newest for 'latest'."""
    if selector == "latest":
        names = archives_newest_first([path.name for path in job.archive_dir.iterdir()]) if job.archive_dir.is_dir() else []
        if not names:
            raise BackupError(f"no archive in {job.archive_dir}")
        return job.archive_dir / names[0]
    name = Path(selector).name
    if archive_time(name) is None:
        raise BackupError(f"{selector!r} is not an archive name like backup-20250101T020000Z.tar (or 'latest')")
    path = job.archive_dir / name
    if not path.is_file():
        raise BackupError(f"no archive {name} in {job.archive_dir}")
    return path


# --- Synapse's remote media -----------------------------------------------------------------------


def synapse_api(purge: MediaPurge, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    """One call to Synapse's client or admin API on the stack network; BackupError with Synapse's answer."""
    request = urllib.request.Request(
        purge.synapse_url.rstrip("/") + path,
        data=json.dumps(body or {}).encode(),
        method=method,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise BackupError(f"{method} {path}: HTTP {error.code} {error.read().decode(errors='replace')[:300]}") from None
    except (urllib.error.URLError, OSError) as error:
        raise BackupError(f"{method} {path}: Synapse did not answer at {purge.synapse_url}: {error}") from None


def purge_media(job: Job) -> int:
    """Purge the remote media not accessed for max_age_days, logged in as the admin for this call only."""
    if job.media_purge is None:
        log("media purge is not configured for this stack (synapse.remote_media_purge)")
        return 1
    purge = job.media_purge
    before = now() - timedelta(days=purge.max_age_days)
    try:
        password = Path(purge.password_file).read_text().strip()
        login = synapse_api(purge, "POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": purge.admin_user}, "password": password,
        })
        token = login["access_token"]
        try:
            result = synapse_api(purge, "POST", f"/_synapse/admin/v1/purge_media_cache?before_ts={int(before.timestamp() * 1000)}",
                                 token=token)
        finally:
            synapse_api(purge, "POST", "/_matrix/client/v3/logout", token=token)
    except (BackupError, OSError, KeyError) as error:
        log(f"media purge FAILED: {error}")
        return 1
    log(f"media purge: {result.get('deleted', 0)} remote media files not accessed since {_iso(before)} deleted")
    print(json.dumps({"deleted": result.get("deleted", 0), "before": _iso(before)}))
    return 0


# --- Synapse's state tables ---------------------------------------------------------------------


def _pgpass_fields(line: str) -> list[str]:
    """The five fields of a libpq password file line, unescaped (\\: and \\\\)."""
    fields, current, characters = [], [], iter(line)
    for character in characters:
        if character == "\\":
            current.append(next(characters, ""))
        elif character == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(character)
    return [*fields, "".join(current)]


def postgres_url(pg: Postgres) -> str:
    """A postgresql:// URL for the compressor (it reads no password file), with the password file's password."""
    for line in Path(pg.passfile).read_text().splitlines():
        fields = _pgpass_fields(line)
        if len(fields) == 5 and fields[3] == pg.user:
            user, password, database = (quote(value, safe="") for value in (pg.user, fields[4], pg.database))
            return f"postgresql://{user}:{password}@{pg.host}:{pg.port}/{database}"
    raise BackupError(f"{pg.passfile} has no password for {pg.user}")


def state_rows(pg: Postgres) -> int:
    """Rows in state_groups_state, the table the compressor shrinks."""
    output = io.BytesIO()
    run(["psql", *_pg_args(pg), "--dbname", pg.database, "-At", "-c", "SELECT count(*) FROM state_groups_state"], env=_pg_env(pg),
        sink=output)
    return int(output.getvalue().decode().strip())


def compress_state(job: Job) -> int:
    """One run of synapse_auto_compressor over Synapse's state groups, within the job's chunk limits."""
    if job.state_compression is None or job.postgres is None:
        log("state compression is not configured for this stack (synapse.state_compression)")
        return 1
    compression, pg = job.state_compression, job.postgres
    try:
        import synapse_auto_compressor
    except ImportError:
        log("state compression FAILED: synapse_auto_compressor is not in this image (PyPI has it for x86_64 only)")
        return 1
    started = time.monotonic()
    try:
        before = state_rows(pg)
        synapse_auto_compressor.compress_state_events_table(
            postgres_url(pg), compression.chunk_size, compression.levels, compression.number_of_chunks
        )
        after = state_rows(pg)
    except (BackupError, OSError, RuntimeError) as error:
        log(f"state compression FAILED: {error}")
        return 1
    duration = time.monotonic() - started
    log(f"state compression: state_groups_state {before} -> {after} rows in {duration:.1f} s")
    print(json.dumps({"rows_before": before, "rows_after": after, "duration_seconds": round(duration, 1)}))
    return 0


# --- status -------------------------------------------------------------------------------------


def read_status(job: Job) -> dict[str, Any]:
    try:
        return json.loads((job.archive_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_status(job: Job, **changes: Any) -> None:
    status = {**read_status(job), **changes}
    temporary = job.archive_dir / f"{STATUS_FILE}.new"
    temporary.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(temporary, job.archive_dir / STATUS_FILE)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def health_verdict(schedule: CronSchedule, last_success: datetime | None, started: datetime, at: datetime) -> tuple[bool, str]:
    """Healthy while the last success (or the container's start) is within twice the schedule's interval."""
    allowed = 2 * schedule.longest_gap(at)
    since = max(moment for moment in (last_success, started) if moment is not None)
    late = at - since
    described = f"last success {_iso(last_success)}" if last_success else f"no success since start at {_iso(started)}"
    if late > allowed:
        return False, f"unhealthy: {described}, {_hours(late)} ago, more than twice the schedule's interval ({_hours(allowed)})"
    return True, f"healthy: {described}; next run {_iso(schedule.next_after(at))}"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def container_started() -> datetime:
    """When this container's main process started (from /proc), the fallback being now."""
    try:
        fields = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), timezone.utc)
    except (OSError, ValueError, IndexError, StopIteration):
        return now()


# --- commands -----------------------------------------------------------------------------------


def selected_parts(job: Job, only: list[str] | None) -> list[str]:
    """The parts `--only` names (all of the job's when None); BackupError for a part the job lacks."""
    if only is None:
        return job.parts()
    unknown = [part for part in only if part not in job.parts()]
    if unknown:
        raise BackupError(f"no part {', '.join(unknown)} in this stack; its parts: {', '.join(job.parts())}")
    return [part for part in job.parts() if part in only]


def take_backup(job: Job, only: list[str] | None = None, taken_before: str | None = None) -> str | None:
    """One run: the parts (all, or `only`) into a new archive, retention, then the offsite copy.
    The archive's name on success, else None.

    `taken_before`: BEFORE_CHANGE when a deploy asks for it before it replaces a container that
    holds data, BEFORE_RESTORE when a restore saves what it replaces; the archive's name says so."""
    started_at, started = now(), time.monotonic()
    name = archive_name(started_at, taken_before)
    try:
        with locked(job), deadline(job.timeout_seconds, "the backup run"):
            os.umask(0o077)  # archives and everything in them hold secrets
            _remove_leftovers(job)
            work = job.archive_dir / f"{WORK_PREFIX}{name}"
            work.mkdir(mode=0o700)
            partial = job.archive_dir / f"{name}.partial"
            try:
                wanted = selected_parts(job, only)
                parts = [part for part in PARTS if part.enabled(job) and (part.group is None or part.group in wanted)]
                write_archive(partial, work, parts, job, started_at)
                os.replace(partial, job.archive_dir / name)
            finally:
                shutil.rmtree(work, ignore_errors=True)
                partial.unlink(missing_ok=True)
            size = (job.archive_dir / name).stat().st_size
            duration = time.monotonic() - started
            log(f"archive {name}: {size / 1e6:.1f} MB in {duration:.1f} s")
            # Pruned only now that a newer archive exists (offsite: once it is there too).
            prune(job, now())
            projected = projected_bytes(job, now())
            offsite_error = copy_offsite(job, job.archive_dir / name)
    except (BackupError, OSError) as error:
        log(f"backup FAILED after {time.monotonic() - started:.1f} s: {error}")
        write_status(job, last_run=_iso(started_at), last_result="failed", last_error=str(error), last_failure=_iso(started_at))
        return None
    if offsite_error:
        write_status(job, last_run=_iso(started_at), last_result="failed", last_error=offsite_error, last_archive=name,
                     last_failure=_iso(started_at))
        return None
    write_status(job, last_run=_iso(started_at), last_result="ok", last_error=None, last_archive=name,
                 last_success=_iso(started_at), last_duration_seconds=round(duration, 1), last_size_bytes=size,
                 projected_bytes=projected)
    print(json.dumps({"archive": name, "size_bytes": size, "duration_seconds": round(duration, 1)}))
    return name


def _manifest_info(job: Job, created: datetime) -> dict[str, Any]:
    tools = {"tar": ["tar", "--version"]}
    if job.postgres:
        tools["pg_dump"] = ["pg_dump", "--version"]
    if job.mysql:
        tools["mariadb-dump"] = ["mariadb-dump", "--version"]
    if job.bucket:
        tools["rclone"] = ["rclone", "version"]
    return {"stack": job.stack, "created": _iso(created), "tools": {name: first_line(argv) for name, argv in tools.items()}}


def copy_offsite(job: Job, archive: Path) -> str | None:
    """Copy the archive to the offsite remote, then apply the offsite retention; the error message when that failed."""
    if job.offsite is None:
        return None
    offsite = job.offsite
    try:
        run(["rclone", "copyto", "--config", offsite.rclone_config, str(archive), offsite.path(archive.name)])
        log(f"copied {archive.name} to {offsite.described()}")
        prune_offsite(offsite, now())
    except BackupError as error:
        message = f"offsite copy to {offsite.described()} failed (the local archive is kept): {error}"
        log(message)
        return message
    return None


def prune(job: Job, at: datetime) -> list[str]:
    """Delete the archives retention no longer keeps; return their names."""
    names = archives_newest_first([path.name for path in job.archive_dir.iterdir()])
    holdings = {name: held_parts(job.archive_dir / name) for name in names}
    pruned = archives_no_part_keeps(holdings, at, job.retention)
    for name in pruned:
        (job.archive_dir / name).unlink()
        log(f"pruned {name} (holding {', '.join(holdings[name]) or 'no part'}): no part's retention keeps it")
    return pruned


def part_sizes(job: Job) -> dict[str, int]:
    """Each part's size in the newest archive holding it, by that archive's manifest."""
    sizes: dict[str, int] = {}
    for part, name in newest_archive_per_part(job).items():
        entries = read_manifest(job.archive_dir / name).get("parts", {})
        sizes[part] = sum(entry["size"] for file, entry in entries.items() if SIZED_AS.get(file) == part)
    return sizes


def projected_bytes(job: Job, at: datetime) -> int:
    """What the archives will take once each part's retention holds all it keeps; logged part by part."""
    projection = project_retention(job.part_plans(at), part_sizes(job))
    log(f"at retention the archives take {projection.described()}")
    return projection.total_bytes


def offsite_archives(offsite: Offsite) -> list[str]:
    """This stack's offsite archives (their local names), newest first; any other file is not its to count or touch."""
    listing = io.BytesIO()
    run(["rclone", "lsf", "--files-only", "--config", offsite.rclone_config, offsite.remote], sink=listing)
    return archives_newest_first(owned_archives(offsite.owner, listed_names(listing.getvalue())))


def prune_offsite(offsite: Offsite, at: datetime) -> list[str]:
    """Delete this stack's offsite archives the offsite retention no longer keeps; return their names."""
    pruned = archives_to_prune(offsite_archives(offsite), at, offsite.keep_days, offsite.keep_count)
    for name in pruned:
        run(["rclone", "deletefile", "--config", offsite.rclone_config, offsite.path(name)])
        log(f"pruned {name} from {offsite.described()} (keeping {offsite.keep_count} archives, {offsite.keep_days} days)")
    return pruned


def fetch(job: Job, selector: str) -> int:
    """Bring an archive back from the offsite copy (decrypted) into the archive directory, check it, print its name.

    `latest` is this stack's newest offsite archive. A name the stack's directory lacks is looked
    for where every stack copied its archives before (unencrypted, under the local name), and
    taken only if its manifest says it is this stack's."""
    if job.offsite is None:
        log("fetch FAILED: this stack has no offsite copy (backup.offsite.enabled)")
        return 1
    offsite = job.offsite
    try:
        with locked(job):
            os.umask(0o077)
            owned = offsite_archives(offsite)
            if selector == "latest":
                if not owned:
                    raise BackupError(f"no archive of {offsite.owner} in {offsite.described()}")
                name, source = owned[0], offsite.path(owned[0])
            else:
                name = Path(selector).name
                if archive_time(name) is None:
                    raise BackupError(f"{selector!r} is not an archive name like backup-20250101T020000Z.tar (or 'latest')")
                source = offsite.path(name) if name in owned else remote_path(offsite.legacy_remote, name)
            target = job.archive_dir / name
            if target.is_file():
                log(f"{name} is already in {job.archive_dir}: not fetched again")
            else:
                partial = job.archive_dir / f"{name}.partial"
                try:
                    started = time.monotonic()
                    run(["rclone", "copyto", "--config", offsite.rclone_config, source, str(partial)])
                    with tempfile.TemporaryDirectory(dir=job.archive_dir, prefix=WORK_PREFIX + "fetch-") as work:
                        stack = extract_archive(partial, Path(work)).get("stack")
                    if stack != job.stack:
                        raise BackupError(f"{source} is an archive of stack {stack!r}, not of {job.stack!r}")
                    os.replace(partial, target)
                finally:
                    partial.unlink(missing_ok=True)
                log(f"fetched {name} from {offsite.described() if name in owned else offsite.legacy_remote} "
                    f"in {time.monotonic() - started:.1f} s; it matches its manifest")
    except (BackupError, OSError) as error:
        log(f"fetch FAILED: {error}")
        return 1
    print(name)
    return 0


def held_parts(archive: Path) -> list[str]:
    """The parts an archive holds; none when it cannot be read (a damaged archive is nobody's copy)."""
    try:
        return archive_parts(archive)
    except (tarfile.TarError, KeyError, ValueError, BackupError, OSError):
        return []


def archive_parts(archive: Path) -> list[str]:
    """The parts (synapse, mysql, media, bucket) an archive holds, by its manifest, in restore order."""
    names = set(read_manifest(archive).get("parts", {}))
    return list(dict.fromkeys(part.group for part in RESTORE_ORDER if part.name in names))


def newest_archive_per_part(job: Job) -> dict[str, str]:
    """For each part, the newest archive holding it."""
    newest: dict[str, str] = {}
    names = archives_newest_first([path.name for path in job.archive_dir.iterdir()]) if job.archive_dir.is_dir() else []
    for name in names:
        for part in held_parts(job.archive_dir / name):
            newest.setdefault(part, name)
        if len(newest) == len(job.parts()):
            break
    return newest


def restore_plan(job: Job, selector: str, only: list[str] | None) -> list[tuple[Path, list[str]]]:
    """The archives a restore reads, each with the parts it brings back, oldest archive first."""
    wanted = selected_parts(job, only)
    if selector != "latest":
        archive = resolve_archive(job, selector)
        present = archive_parts(archive)
        missing = [part for part in wanted if part not in present]
        if only is not None and missing:
            raise BackupError(f"{archive.name} holds no {', '.join(missing)} part (it holds {', '.join(present) or 'none'})")
        for part in missing:
            log(f"{part}: not in {archive.name}; left as it is")
        return [(archive, [part for part in wanted if part in present])]
    newest = newest_archive_per_part(job)
    missing = [part for part in wanted if part not in newest]
    if not newest or (only is not None and missing):
        raise BackupError(f"no archive in {job.archive_dir} holds {', '.join(missing or wanted)}")
    for part in missing:
        log(f"{part}: in no archive; left as it is")
    plan: dict[str, list[str]] = {}
    for part in wanted:
        if part in newest:
            plan.setdefault(newest[part], []).append(part)
    return [(job.archive_dir / name, parts) for name, parts in sorted(plan.items())]


def plan(job: Job, selector: str, only: list[str] | None) -> int:
    """Check each archive a restore would read; print one line per archive: its name and its parts."""
    try:
        steps = restore_plan(job, selector, only)
        for archive, _ in steps:
            with tempfile.TemporaryDirectory(dir=job.archive_dir, prefix=WORK_PREFIX + "verify-") as work:
                extract_archive(archive, Path(work))
    except (BackupError, OSError) as error:
        log(f"plan FAILED: {error}")
        return 1
    for archive, parts in steps:
        print(f"{archive.name} {','.join(parts)}")
    return 0


def restore(job: Job, selector: str, only: list[str] | None = None, safety_copy: bool = True) -> int:
    """Put the parts (all, or `only`) back from their archives; the caller has stopped the services using their data.

    First, unless told not to, what the restore replaces goes into an archive of its own
    (BEFORE_RESTORE), with the services stopped: the way back. Without it, nothing is replaced."""
    started = time.monotonic()
    try:
        plan = restore_plan(job, selector, only)
    except (BackupError, OSError) as error:
        log(f"restore FAILED: {error}")
        return 1
    way_back = None
    if safety_copy:
        replaced = list(dict.fromkeys(part for _, parts in plan for part in parts))
        way_back = take_backup(job, replaced, taken_before=BEFORE_RESTORE)
        if way_back is None:
            log("restore REFUSED: what it would replace could not be saved (see above); nothing was changed. "
                "Fix the cause, or restore without a way back: --without-safety-copy")
            return 1
        log(f"what the restore replaces is saved in {way_back}")
    try:
        for archive, parts in plan:
            restore_archive(job, archive, parts)
    except (BackupError, OSError) as error:
        back = f"; the data as it was before is in {way_back}" if way_back else ""
        log(f"restore FAILED after {time.monotonic() - started:.1f} s: {error}{back}")
        return 1
    log(f"restore of {selector} ({', '.join(selected_parts(job, only))}) done in {time.monotonic() - started:.1f} s")
    if way_back:
        log(f"to go back to the data as it was before: restore {way_back}")
    return 0


def restore_archive(job: Job, archive: Path, parts: list[str]) -> None:
    """Restore `parts` from one archive, in restore order."""
    with locked(job):
        os.umask(0o077)
        work = job.archive_dir / f"{WORK_PREFIX}restore-{archive.name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700)
        try:
            manifest = extract_archive(archive, work)
            log(f"restoring {', '.join(parts)} from {archive.name} (taken {manifest.get('created')}, stack {manifest.get('stack')})")
            for part in RESTORE_ORDER:
                if part.restore is None or part.group not in parts or part.name not in manifest["parts"]:
                    continue
                part_started = time.monotonic()
                part.restore(job, work / part.name, work)
                log(f"{part.name}: restored in {time.monotonic() - part_started:.1f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)


def verify(job: Job, selector: str) -> int:
    try:
        archive = resolve_archive(job, selector)
        with tempfile.TemporaryDirectory(dir=job.archive_dir, prefix=WORK_PREFIX + "verify-") as work:
            extract_archive(archive, Path(work))
    except (BackupError, OSError) as error:
        log(f"verify FAILED: {error}")
        return 1
    print(archive.name)
    return 0


def list_archives(job: Job, offsite: bool) -> int:
    """The local archives with their sizes, or (`offsite`) this stack's offsite archives, newest first."""
    if offsite:
        if job.offsite is None:
            log("this stack has no offsite copy (backup.offsite.enabled)")
            return 1
        try:
            for name in offsite_archives(job.offsite):
                print(name)
        except BackupError as error:
            log(f"listing {job.offsite.described()} FAILED: {error}")
            return 1
        return 0
    names = archives_newest_first([path.name for path in job.archive_dir.iterdir()]) if job.archive_dir.is_dir() else []
    for name in names:
        print(f"{name}\t{(job.archive_dir / name).stat().st_size}")
    return 0


def health(job: Job) -> int:
    status = read_status(job)
    healthy, message = health_verdict(job.main_schedule(), _parse_iso(status.get("last_success")), container_started(), now())
    print(message)
    return 0 if healthy else 1


def metrics_text(job: Job, status: dict[str, Any], started: datetime, at: datetime) -> str:
    """The job's state in Prometheus's text format; a metric without a value yet is left out."""
    schedule = job.main_schedule()
    values: dict[str, tuple[str, float | None]] = {
        "backup_last_run_success": ("1 if the last run succeeded, 0 if it failed", None),
        "backup_last_run_timestamp_seconds": ("When the last run started", _timestamp(status.get("last_run"))),
        "backup_last_success_timestamp_seconds": ("When the last successful run started", _timestamp(status.get("last_success"))),
        "backup_last_failure_timestamp_seconds": ("When the last failed run started", _timestamp(status.get("last_failure"))),
        "backup_last_size_bytes": ("Size of the last archive", status.get("last_size_bytes")),
        "backup_last_duration_seconds": ("How long the last successful run took", status.get("last_duration_seconds")),
        "backup_started_timestamp_seconds": ("When the backup container started", started.timestamp()),
        "backup_interval_seconds": ("Longest interval between two scheduled runs", schedule.longest_gap(at).total_seconds()),
        "backup_next_run_timestamp_seconds": ("When the next scheduled run starts", job.next_run(at)[0].timestamp()),
        "backup_archives": ("Archives kept", float(len(archives_newest_first(os.listdir(job.archive_dir))))),
        "backup_archives_bytes": ("What the archives take now", _archives_bytes(job.archive_dir)),
        "backup_archive_free_bytes": ("Free space where the archives are written", _free_bytes(job.archive_dir)),
        "backup_retention_projected_bytes": (
            "What the archives will take once retention holds all it keeps, during a run (at the last success)",
            status.get("projected_bytes"),
        ),
    }
    if status.get("last_result") in ("ok", "failed"):
        values["backup_last_run_success"] = (values["backup_last_run_success"][0], float(status["last_result"] == "ok"))
    lines = []
    for name, (help_text, value) in values.items():
        if value is not None:
            lines += [f"# HELP {name} {help_text}.", f"# TYPE {name} gauge", f"{name} {float(value):.17g}"]
    return "\n".join(lines) + "\n"


def _timestamp(text: str | None) -> float | None:
    moment = _parse_iso(text)
    return moment.timestamp() if moment else None


def _archives_bytes(directory: Path) -> float:
    return float(sum((directory / name).stat().st_size for name in archives_newest_first(os.listdir(directory))))


def _free_bytes(directory: Path) -> float:
    stats = os.statvfs(directory)
    return float(stats.f_bavail * stats.f_frsize)


def serve_metrics(job: Job, port: int) -> http.server.ThreadingHTTPServer:
    """Serve `GET /metrics` from a background thread, for Prometheus."""
    started = container_started()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = metrics_text(job, read_status(job), started, now()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the job's own log

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Scheduler:
    """Sleeps until the next scheduled minute, runs `backupctl now` for the parts due, logs a failure, repeats."""

    def __init__(self, job: Job, config_path: str) -> None:
        self.job = job
        self.config_path = config_path
        self.schedule = job.main_schedule()
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        if self.child is not None:
            self.child.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        interval = self.schedule.longest_gap(now())
        if self.job.metrics_port is not None:
            serve_metrics(self.job, self.job.metrics_port)
        for schedule, parts in self.job.schedules():
            log(f"schedule '{schedule.expression}' ({self.job.timezone}): {', '.join(parts) or 'configuration only'}")
        for expression, task in self.job.maintenance():
            log(f"schedule '{expression}' ({self.job.timezone}): {_described([task])}")
        due, tasks = self.job.next_tasks(now())
        log(f"scheduler started: longest interval {_hours(interval)}, archives in {self.job.archive_dir}, "
            f"next run {_iso(due)} ({_local(due, self.job.timezone)} {self.job.timezone}): {_described(tasks)}")
        while not self.stopping:
            due, tasks = self.job.next_tasks(now())
            while not self.stopping and now() < due:
                _reap_orphans()
                time.sleep(min(5.0, max(0.1, (due - now()).total_seconds())))
            if self.stopping:
                break
            for task in tasks:
                if self.stopping:
                    break
                self.child = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--config", self.config_path, *task],
                    env={**os.environ, "BACKUP_SCHEDULED": "1"},
                )
                status = self.child.wait()
                self.child = None
                if status != 0:
                    what = "backup" if task[0] == "now" else task[0]
                    following = _iso(self.job.next_tasks(now())[0])
                    log(f"scheduled {what} failed with exit status {status} (see above); next run {following}")
        log("scheduler stopped")
        return 0


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _described(tasks: list[list[str]]) -> str:
    """The tasks of a run in words: 'every part', 'mysql', 'configuration only', 'media purge'."""
    words = []
    for task in tasks:
        if task[0] == "purge-media":
            words.append("media purge")
        elif task[0] == "compress-state":
            words.append("state compression")
        elif "--only" in task:
            words.append(task[task.index("--only") + 1].replace(",", ", ") or "configuration only")
        else:
            words.append("every part")
    return "; ".join(words)


def _reap_orphans() -> None:
    """As the container's first process, collect exited processes docker exec left behind."""
    if os.getpid() != 1:
        return
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def print_services(job: Job, only: list[str] | None) -> int:
    """The containers writing the data of the parts (all, or `only`), once each."""
    try:
        parts = selected_parts(job, only)
    except BackupError as error:
        log(str(error))
        return 1
    for name in dict.fromkeys(name for part in parts for name in job.services.get(part, [])):
        print(name)
    return 0


def main(argv: list[str]) -> int:
    config_path = os.environ.get("BACKUP_CONFIG", JOB_PATH)
    if argv[:1] == ["--config"] and len(argv) >= 2:
        config_path, argv = argv[1], argv[2:]
    command, arguments = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    job = Job.load(config_path)
    only: list[str] | None = None
    if "--only" in arguments:
        index = arguments.index("--only")
        if index + 1 >= len(arguments):
            print("--only needs parts, like --only mysql or --only mysql,bucket", file=sys.stderr)
            return 2
        only = [part for part in arguments[index + 1].split(",") if part]
        arguments = arguments[:index] + arguments[index + 2:]
    without_safety_copy = "--without-safety-copy" in arguments
    arguments = [argument for argument in arguments if argument != "--without-safety-copy"]
    selector = arguments[0] if arguments else "latest"
    commands: dict[str, Callable[[], int]] = {
        "schedule": lambda: Scheduler(job, config_path).run(),
        "now": lambda: 0 if take_backup(job, only, taken_before=BEFORE_CHANGE if arguments == ["--before-change"] else None) else 1,
        "list": lambda: list_archives(job, offsite=arguments == ["--offsite"]),
        "fetch": lambda: fetch(job, selector),
        "verify": lambda: verify(job, selector),
        "plan": lambda: plan(job, selector, only),
        "restore": lambda: restore(job, selector, only, safety_copy=not without_safety_copy),
        "services": lambda: print_services(job, only),
        "purge-media": lambda: purge_media(job),
        "compress-state": lambda: compress_state(job),
        "health": lambda: health(job),
        "status": lambda: (print(json.dumps(read_status(job), indent=2)) or 0),
        "metrics": lambda: (print(metrics_text(job, read_status(job), container_started(), now()), end="") or 0),
    }
    if command not in commands:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    return commands[command]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
