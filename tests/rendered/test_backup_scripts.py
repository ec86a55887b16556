"""The backup image's tool run for real: against a local PostgreSQL and MariaDB, rclone and tar.

The job file is the one the program renders (`render_job`), with the container's paths and
hosts replaced by local ones; the credential files come from the same render functions, with
passwords full of the characters those formats must escape.
"""

from __future__ import annotations

import http.server
import json
import os
import py_compile
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from components.images.backup import archives as job_file
from components.rendering import backup as render
from components.rendering import synapse as synapse_render
from components.rendering.voicegrow import PASSWORD_PLACEHOLDER
from config import resolve_settings
from config.models import BACKUP_PARTS, BackupRetention, BackupSettings, OffsiteSettings, PartRetention
from tests.program import ROOT
from tests.rendered.processes import wait_for
from tests.rendered.servers import Mariadb, Postgres, running_mariadb, running_postgres
from tests.stack_config import ALERT_RECEIVERS

IMAGE_DIR = ROOT / "components" / "images" / "backup"
sys.path.insert(0, str(IMAGE_DIR))

import archives  # noqa: E402  (the image's modules, imported as the image imports them)
import backupctl  # noqa: E402
from cron import CronSchedule  # noqa: E402

pytestmark = pytest.mark.rendered

PG_PASSWORD = 'pg:pa\\ss"word'
MYSQL_PASSWORD = 'my"pa\\ss:word#1'
SYNAPSE_UID = 991
SERVER = "selfhosted-test-voicegrow-server"




# --- servers (one each per module) ------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        escaped = PG_PASSWORD.replace("'", "''")
        # As the official image creates POSTGRES_USER: a superuser owning its database.
        server.sql(f"CREATE ROLE synapse LOGIN SUPERUSER PASSWORD '{escaped}'", database="postgres")
        server.sql("CREATE DATABASE synapse OWNER synapse TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'", database="postgres")
        yield server


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mariadb]:
    with running_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        escaped = MYSQL_PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
        # The backup's account, made by the program's statements, reached over TCP with a password
        # as the backup container reaches MySQL.
        statements = render.mysql_backup_account_statements(render.MysqlSource("127.0.0.1", server.port, "voicegrow"))
        server.sql(statements.replace(PASSWORD_PLACEHOLDER, escaped))
        yield server


# --- a job over local sources ----------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    config: Path
    archives: Path
    synapse_data: Path
    bucket: Path
    postgres: Postgres
    mariadb: Mariadb


def _seed(sources: Sources) -> None:
    """The known state every test starts from."""
    sources.postgres.sql(
        "DROP TABLE IF EXISTS events; CREATE TABLE events (id serial PRIMARY KEY, body text NOT NULL);"
        "INSERT INTO events (body) VALUES ('hello from before the backup'), ('ünïcödé ✓');"
    )
    sources.mariadb.sql(
        "DROP DATABASE IF EXISTS voicegrow; CREATE DATABASE voicegrow CHARACTER SET utf8mb4;"
        "CREATE TABLE voicegrow.devices (id INT PRIMARY KEY, name VARCHAR(64)) ENGINE=InnoDB;"
        "INSERT INTO voicegrow.devices VALUES (1, 'speaker in the kitchen'), (2, '客厅');"
        "CREATE TABLE voicegrow.audit (device INT) ENGINE=InnoDB;"
        "CREATE TRIGGER voicegrow.log_device AFTER INSERT ON voicegrow.devices FOR EACH ROW INSERT INTO voicegrow.audit VALUES (NEW.id);"
        "CREATE FUNCTION voicegrow.greeting() RETURNS VARCHAR(16) DETERMINISTIC RETURN 'ni hao';"
    )
    for directory in (sources.synapse_data, sources.bucket):
        shutil.rmtree(directory, ignore_errors=True)
    media = sources.synapse_data / "media_store" / "local_content" / "ab" / "cd"
    media.mkdir(parents=True)
    (sources.synapse_data / "signing.key").write_text("ed25519 a_OLD signing-key-material\n")
    (sources.synapse_data / "homeserver.pid").write_text("7\n")
    (media / "efghijkl").write_bytes(os.urandom(4096))
    if os.geteuid() == 0:
        for path in [sources.synapse_data, *sources.synapse_data.rglob("*")]:
            os.chown(path, SYNAPSE_UID, SYNAPSE_UID)
    (sources.bucket / "audio" / "2025").mkdir(parents=True)
    (sources.bucket / "audio" / "2025" / "reply.mp3").write_bytes(b"ID3" + os.urandom(2048))
    (sources.bucket / "readme.txt").write_text("objects\n")


def _retention(keep_count: int) -> BackupRetention:
    """Every part kept `keep_count` copies, for seven days."""
    return BackupRetention(**{part: PartRetention(keep_days=7, keep_count=keep_count) for part in BACKUP_PARTS})


@pytest.fixture
def sources(tmp_path: Path, postgres: Postgres, mariadb: Mariadb) -> Sources:
    """A rendered job pointed at local servers and directories, with the data seeded."""
    if shutil.which("rclone") is None:
        pytest.skip("rclone is not installed (Debian's rclone package)")
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    pg_source = render.PostgresSource(host="127.0.0.1", port=postgres.port, user="synapse", database="synapse")
    my_source = render.MysqlSource(host="127.0.0.1", port=mariadb.port, database="voicegrow")
    (secrets / "pgpass").write_text(render.render_pgpass(pg_source, PG_PASSWORD))
    (secrets / "mysql.cnf").write_text(render.render_mysql_client(my_source, MYSQL_PASSWORD))
    # rclone's local backend stands in for MinIO's S3: the same copy and sync, on a directory.
    (secrets / "rclone.conf").write_text(f"[{job_file.MINIO_REMOTE}]\ntype = local\n")
    for path in secrets.iterdir():
        path.chmod(0o600)
    configs = tmp_path / "configs" / "synapse"
    configs.mkdir(parents=True)
    (configs / "homeserver.yaml").write_text("server_name: test.example.com\n")

    settings = BackupSettings(enabled=True, schedule="0 2 * * *", retention=_retention(keep_count=3))
    targets = render.JobTargets(
        postgres=pg_source, mysql=my_source, bucket=render.BucketSource("http://minio:9000", "voicegrow"),
        synapse_data=True, configs=True,
        services={"synapse": ["selfhosted-test-synapse"], "mysql": [SERVER], "media": ["selfhosted-test-synapse"], "bucket": [SERVER]},
    )
    job = json.loads(render.render_job("selfhosted", "test", settings, targets))
    job["archive_dir"] = str(tmp_path / "archives")
    job["synapse_data"] = str(tmp_path / "synapse-data")
    job["configs_dir"] = str(tmp_path / "configs")
    job["postgres"]["passfile"] = str(secrets / "pgpass")
    job["mysql"]["defaults_file"] = str(secrets / "mysql.cnf")
    job["bucket"].update(rclone_config=str(secrets / "rclone.conf"), bucket=str(tmp_path / "bucket"))
    (tmp_path / "backup.json").write_text(json.dumps(job))
    result = Sources(tmp_path / "backup.json", tmp_path / "archives", tmp_path / "synapse-data", tmp_path / "bucket", postgres, mariadb)
    _seed(result)
    return result


def _backupctl_env(sources: Sources) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "BACKUP_"))}
    # The image puts its PostgreSQL's client tools first on PATH; so does this.
    env["PATH"] = f"{sources.postgres.bindir}:{env['PATH']}"
    return env


def _backupctl(sources: Sources, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(IMAGE_DIR / "backupctl.py"), "--config", str(sources.config), *arguments],
                          capture_output=True, text=True, env=_backupctl_env(sources), timeout=300)


def _archives(sources: Sources) -> list[str]:
    return archives.archives_newest_first([path.name for path in sources.archives.iterdir()])


def _manifest(path: Path) -> dict:
    with tarfile.open(path) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        return json.loads(member.read())


def _take_backup(sources: Sources, *options: str) -> Path:
    result = _backupctl(sources, "now", *options)
    assert result.returncode == 0, result.stderr
    return sources.archives / json.loads(result.stdout.splitlines()[-1])["archive"]


# --- runs against the real tools -------------------------------------------------------------


def test_a_run_writes_one_timestamped_archive_only_its_owner_can_read(sources: Sources) -> None:
    archive = _take_backup(sources)
    assert archives.archive_time(archive.name) is not None
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert _archives(sources) == [archive.name]


def test_a_run_a_deploy_asks_for_is_named_for_it(sources: Sources) -> None:
    archive = _take_backup(sources, "--before-change")
    assert archive.name.endswith("-before-change.tar") and archives.archive_time(archive.name) is not None


def test_the_manifest_gives_every_part_its_size_and_sha256(sources: Sources, tmp_path: Path) -> None:
    archive = _take_backup(sources)
    manifest = _manifest(archive)
    assert set(manifest["parts"]) == {part.name for part in backupctl.PARTS}
    with tarfile.open(archive) as opened:
        opened.extractall(tmp_path / "extracted", filter="data")
    assert archives.verify_manifest(manifest, tmp_path / "extracted") == []
    assert manifest["tools"]["pg_dump"].startswith("pg_dump (PostgreSQL)")


def test_the_postgres_part_is_a_custom_format_dump_pg_restore_can_list(sources: Sources, tmp_path: Path) -> None:
    with tarfile.open(_take_backup(sources)) as opened:
        opened.extract("synapse-postgres.pgdump", tmp_path, filter="data")
    listing = subprocess.run([str(sources.postgres.bindir / "pg_restore"), "--list", str(tmp_path / "synapse-postgres.pgdump")],
                             capture_output=True, text=True, check=True).stdout
    assert "TABLE DATA public events" in listing


def test_the_mysql_dump_keeps_routines_and_triggers(sources: Sources, tmp_path: Path) -> None:
    import gzip

    with tarfile.open(_take_backup(sources)) as opened:
        opened.extract("voicegrow-mysql.sql.gz", tmp_path, filter="data")
    dump = gzip.decompress((tmp_path / "voicegrow-mysql.sql.gz").read_bytes()).decode()
    assert "CREATE DEFINER" in dump and "FUNCTION `greeting`" in dump
    assert "TRIGGER voicegrow.log_device AFTER INSERT" in dump
    assert "DROP DATABASE IF EXISTS `voicegrow`" in dump


def test_restore_brings_back_rows_files_and_objects_changed_after_the_backup(sources: Sources) -> None:
    archive = _take_backup(sources)
    sources.postgres.sql("DELETE FROM events; CREATE TABLE added_later (id int);")
    sources.mariadb.sql("DELETE FROM voicegrow.devices; INSERT INTO voicegrow.devices VALUES (9, 'new')")
    (sources.synapse_data / "signing.key").write_text("ed25519 a_NEW a fresh stack's key\n")
    shutil.rmtree(sources.synapse_data / "media_store")
    (sources.bucket / "readme.txt").unlink()
    (sources.bucket / "written-after-backup.txt").write_text("newer\n")

    result = _backupctl(sources, "restore", archive.name)

    assert result.returncode == 0, result.stderr
    assert sources.postgres.sql("SELECT body FROM events ORDER BY id") == "hello from before the backup\nünïcödé ✓"
    assert sources.postgres.sql("SELECT to_regclass('added_later') IS NULL") == "t"
    assert sources.mariadb.sql("SELECT name FROM voicegrow.devices ORDER BY id") == "speaker in the kitchen\n客厅"
    assert sources.mariadb.sql("SELECT voicegrow.greeting()") == "ni hao"
    assert (sources.synapse_data / "signing.key").read_text() == "ed25519 a_OLD signing-key-material\n"
    assert (sources.synapse_data / "media_store" / "local_content" / "ab" / "cd" / "efghijkl").stat().st_size == 4096
    assert sorted(str(path.relative_to(sources.bucket)) for path in sources.bucket.rglob("*") if path.is_file()) == [
        "audio/2025/reply.mp3", "readme.txt",
    ]


def test_a_restore_first_saves_what_it_replaces_and_that_archive_brings_it_back(sources: Sources) -> None:
    backup = _take_backup(sources)
    sources.postgres.sql("INSERT INTO events (body) VALUES ('written after the backup')")
    sources.mariadb.sql("INSERT INTO voicegrow.devices VALUES (7, 'bought after the backup')")

    result = _backupctl(sources, "restore", backup.name)

    assert result.returncode == 0, result.stderr
    saved = [path for path in sources.archives.iterdir() if path.name.endswith("-before-restore.tar")]
    assert len(saved) == 1 and f"what the restore replaces is saved in {saved[0].name}" in result.stderr
    assert f"to go back to the data as it was before: restore {saved[0].name}" in result.stderr
    assert "written after the backup" not in sources.postgres.sql("SELECT body FROM events")

    back = _backupctl(sources, "restore", saved[0].name, "--without-safety-copy")

    assert back.returncode == 0, back.stderr
    assert "written after the backup" in sources.postgres.sql("SELECT body FROM events")
    assert "bought after the backup" in sources.mariadb.sql("SELECT name FROM voicegrow.devices")
    assert len([path for path in sources.archives.iterdir() if path.name.endswith("-before-restore.tar")]) == 1


def test_a_restore_that_cannot_save_what_it_replaces_replaces_nothing(sources: Sources) -> None:
    _take_backup(sources)
    sources.postgres.sql("INSERT INTO events (body) VALUES ('written after the backup')")
    (sources.bucket / "unreadable").mkdir()
    (sources.bucket / "unreadable" / "object").write_text("x")
    config = json.loads(sources.config.read_text())
    config["bucket"]["bucket"] = str(sources.bucket / "no-such-bucket")  # the copy of the bucket fails
    sources.config.write_text(json.dumps(config))

    result = _backupctl(sources, "restore", "latest", "--only", "synapse,bucket")

    assert result.returncode == 1
    assert "restore REFUSED: what it would replace could not be saved" in result.stderr and "--without-safety-copy" in result.stderr
    assert "written after the backup" in sources.postgres.sql("SELECT body FROM events")
    assert not [path for path in sources.archives.iterdir() if path.name.endswith("-before-restore.tar")]


def test_restored_database_keeps_its_c_collation(sources: Sources) -> None:
    _take_backup(sources)
    assert _backupctl(sources, "restore", "latest").returncode == 0
    assert sources.postgres.sql("SELECT datcollate FROM pg_database WHERE datname = 'synapse'", database="postgres") == "C"


@pytest.mark.skipif(os.geteuid() != 0, reason="owners can only be restored as root (as in the container)")
def test_restored_synapse_files_belong_to_synapses_user_again(sources: Sources) -> None:
    _take_backup(sources)
    (sources.synapse_data / "signing.key").unlink()
    assert _backupctl(sources, "restore", "latest").returncode == 0
    assert (sources.synapse_data / "signing.key").stat().st_uid == SYNAPSE_UID
    assert not (sources.synapse_data / "homeserver.pid").exists()


def test_restore_refuses_a_damaged_archive_and_changes_nothing(sources: Sources) -> None:
    archive = _take_backup(sources)
    with tarfile.open(archive) as opened:
        offset = opened.getmember("synapse-media.tar.gz").offset_data
    data = bytearray(archive.read_bytes())
    data[offset + 100] ^= 0xFF
    archive.write_bytes(bytes(data))
    sources.postgres.sql("INSERT INTO events (body) VALUES ('after')")

    result = _backupctl(sources, "restore", "latest")

    assert result.returncode == 1
    assert "does not match its manifest" in result.stderr
    assert "after" in sources.postgres.sql("SELECT body FROM events")


def test_verify_prints_the_name_latest_resolves_to(sources: Sources) -> None:
    archive = _take_backup(sources)
    result = _backupctl(sources, "verify", "latest")
    assert (result.returncode, result.stdout.strip()) == (0, archive.name)


def test_a_failed_run_exits_non_zero_keeps_older_archives_and_records_the_failure(sources: Sources) -> None:
    kept = _take_backup(sources)
    config = json.loads(sources.config.read_text())
    config["postgres"]["database"] = "no_such_database"
    sources.config.write_text(json.dumps(config))

    result = _backupctl(sources, "now")

    assert result.returncode == 1
    assert "backup FAILED" in result.stderr and "no_such_database" in result.stderr
    assert _archives(sources) == [kept.name]
    assert not [path for path in sources.archives.iterdir() if path.name.startswith(".work-") or path.name.endswith(".partial")]
    status = json.loads(_backupctl(sources, "status").stdout)
    assert (status["last_result"], status["last_archive"]) == ("failed", kept.name)


def test_retention_prunes_by_count_and_age_once_a_new_archive_exists(sources: Sources) -> None:
    first = _take_backup(sources)
    today = datetime.now(timezone.utc)
    old = [archives.archive_name(today - timedelta(hours=hours)) for hours in (1, 2, 3)]
    ancient = archives.archive_name(today - timedelta(days=30))
    for name in [*old, ancient]:
        shutil.copyfile(first, sources.archives / name)
    first.unlink()
    (sources.archives / "notes.txt").write_bytes(b"")

    new = _take_backup(sources)

    # keep_count 3: the new one and the two newest old ones; the 30-day-old one is past keep_days.
    assert _archives(sources) == [new.name, old[0], old[1]]
    assert (sources.archives / "notes.txt").exists()


def test_a_run_records_and_logs_what_the_archives_will_take_at_retention(sources: Sources) -> None:
    result = _backupctl(sources, "now")
    assert result.returncode == 0, result.stderr
    sizes = {name: entry["size"] for name, entry in _manifest(sources.archives / _archives(sources)[0])["parts"].items()}
    one_run = sum(size for name, size in sizes.items() if name != "configs.tar.gz")

    # Every part daily, three copies each, all in the same runs: three runs kept and one being written.
    assert json.loads(_backupctl(sources, "status").stdout)["projected_bytes"] == 4 * one_run
    media = sizes["synapse-media.tar.gz"]
    assert "at retention the archives take synapse 3 x " in result.stderr and f"media 3 x {media / 1e9:.1f} GB" in result.stderr


def test_the_projection_sizes_each_part_by_the_newest_archive_holding_it(sources: Sources) -> None:
    _old_layout_archive(sources)
    _set_job(sources, part_schedules={"media": "0 3 * * 0"})
    _run(sources, "synapse,mysql,bucket")
    job = backupctl.Job.load(str(sources.config))
    sizes = backupctl.part_sizes(job)
    old = _manifest(sources.archives / _archives(sources)[1])["parts"]
    # The old layout's whole data volume counts as media; the synapse part is its database and files.
    assert sizes["media"] == old["synapse-data.tar.gz"]["size"]
    new = _manifest(sources.archives / _archives(sources)[0])["parts"]
    assert sizes["synapse"] == new["synapse-postgres.pgdump"]["size"] + new["synapse-files.tar.gz"]["size"]
    projection = archives.project_retention(job.part_plans(datetime.now(timezone.utc)), sizes)
    # Daily parts: three copies within seven days; weekly media: one.
    assert projection.copies == {"synapse": 3, "mysql": 3, "bucket": 3, "media": 1}


def test_an_unreadable_archive_is_pruned_once_a_newer_one_exists(sources: Sources) -> None:
    sources.archives.mkdir()
    damaged = archives.archive_name(datetime.now(timezone.utc) - timedelta(hours=1))
    (sources.archives / damaged).write_bytes(b"not a tar")
    new = _take_backup(sources)
    assert _archives(sources) == [new.name]


def test_a_run_holds_at_most_one_dumped_part_beside_the_archive(sources: Sources, tmp_path: Path) -> None:
    job = backupctl.Job.load(str(sources.config))
    work = tmp_path / "work"
    work.mkdir()
    seen: list[list[str]] = []

    def dump(job: backupctl.Job, target: Path, work: Path) -> None:
        seen.append(sorted(path.name for path in work.iterdir()))
        target.write_bytes(os.urandom(1024))

    parts = [backupctl.Part(f"part-{index}", dump, None, lambda job: True) for index in range(3)]
    backupctl.write_archive(tmp_path / "archive.tar", work, parts, job, datetime.now(timezone.utc))

    assert seen == [[], [], []], "a dumped part was still on disk when the next one was taken"
    assert list(work.iterdir()) == []
    manifest = _manifest(tmp_path / "archive.tar")
    assert list(manifest["parts"]) == ["part-0", "part-1", "part-2"]


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(sources: Sources) -> None:
    sources.archives.mkdir()
    (sources.archives / ".work-backup-20250101T000000Z.tar").mkdir()
    (sources.archives / "backup-20250101T000000Z.tar.partial").write_bytes(b"half")
    _take_backup(sources)
    assert sorted(path.name for path in sources.archives.iterdir() if path.name.startswith((".work", "backup-2025"))) == []


def test_a_run_past_its_timeout_is_stopped_fails_and_leaves_nothing_behind(sources: Sources) -> None:
    config = json.loads(sources.config.read_text())
    config["timeout_seconds"] = 3
    sources.config.write_text(json.dumps(config))
    # A session holding an exclusive lock makes pg_dump wait for it, as a stuck migration would.
    pg = sources.postgres
    locker = subprocess.Popen([str(pg.bindir / "psql"), "-h", str(pg.socket_dir), "-p", str(pg.port), "-U", "postgres", "-d", "synapse"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert locker.stdin is not None
        locker.stdin.write("BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE;\n")
        locker.stdin.flush()
        wait_for(lambda: pg.sql("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted") != "0", 10, "the lock")

        result = _backupctl(sources, "now")

        assert result.returncode == 1
        assert "the backup run did not finish within 3 s and was stopped" in result.stderr
        assert subprocess.run(["pgrep", "-x", "pg_dump"], capture_output=True).returncode == 1, "pg_dump outlived the run"
        assert [path.name for path in sources.archives.iterdir() if not path.name.startswith(".")] == []
        assert json.loads(_backupctl(sources, "status").stdout)["last_result"] == "failed"
    finally:
        locker.communicate("ROLLBACK;\n", timeout=10)
    config["timeout_seconds"] = 300
    sources.config.write_text(json.dumps(config))
    archive = _take_backup(sources)
    assert _archives(sources) == [archive.name]


OPERATOR_RCLONE = "[offsite]\ntype = local\n"
KEYS = ("offsite password of at least 32 characters", "offsite salt of at least thirty-two characters")


def _with_offsite(sources: Sources, remote: Path | str, *, stack: str = "test", encrypt: bool = False,
                  keys: tuple[str, str] = KEYS, directory: str | None = None, keep_days: int = 30, keep_count: int = 1000) -> dict:
    """Give the job the offsite section the program renders for `stack`, over rclone's local backend.

    `directory` replaces the stack's own directory, as two stacks sharing one by mistake would."""
    offsite = OffsiteSettings(enabled=True, remote=f"offsite:{remote}", encrypt=encrypt, keep_days=keep_days, keep_count=keep_count)
    settings = BackupSettings(enabled=True, schedule="0 2 * * *", offsite=offsite)
    section = json.loads(render.render_job("selfhosted", stack, settings, NO_TARGETS))["offsite"]
    if directory is not None:
        section["directory"] = directory
        if not encrypt:
            section["remote"] = directory
    crypt = render.render_offsite_crypt(section["directory"], *keys) if encrypt else None
    rclone_config = sources.config.parent / "secrets" / f"offsite-rclone-{stack}.conf"
    rclone_config.write_text(render.render_offsite_rclone(OPERATOR_RCLONE, crypt))
    section["rclone_config"] = str(rclone_config)
    config = json.loads(sources.config.read_text())
    config["offsite"] = section
    sources.config.write_text(json.dumps(config))
    return section


NO_TARGETS = render.JobTargets(postgres=None, mysql=None, bucket=None, synapse_data=False, configs=False, services={})


def _files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def test_offsite_copy_puts_the_archive_in_the_stacks_directory_under_a_name_carrying_the_stack(sources: Sources, tmp_path: Path) -> None:
    _with_offsite(sources, tmp_path / "offsite")
    archive = _take_backup(sources)
    assert (tmp_path / "offsite" / "selfhosted-test" / f"selfhosted-test.{archive.name}").read_bytes() == archive.read_bytes()


def test_offsite_retention_prunes_the_remote_once_the_new_archive_is_there(sources: Sources, tmp_path: Path) -> None:
    remote = tmp_path / "offsite" / "selfhosted-test"
    remote.mkdir(parents=True)
    today = datetime.now(timezone.utc)
    older = [archives.archive_name(today - timedelta(days=days)) for days in (1, 2, 3)]
    ancient = archives.archive_name(today - timedelta(days=40))
    for name in [*older, ancient]:
        (remote / archives.offsite_name("selfhosted-test", name)).write_bytes(b"")
    (remote / "README").write_bytes(b"")
    _with_offsite(sources, tmp_path / "offsite", keep_days=30, keep_count=3)

    new = _take_backup(sources)

    # keep_count 3 keeps the new archive and the two newest older ones; 40 days is past keep_days.
    kept = [archives.offsite_name("selfhosted-test", name) for name in (new.name, older[0], older[1])]
    assert sorted(path.name for path in remote.iterdir()) == sorted([*kept, "README"])


def test_a_failed_offsite_copy_fails_the_run_but_keeps_the_local_archive(sources: Sources) -> None:
    _with_offsite(sources, "/proc/no-such-place")
    result = _backupctl(sources, "now")
    assert result.returncode == 1
    assert "offsite copy to offsite:/proc/no-such-place/selfhosted-test failed (the local archive is kept)" in result.stderr
    assert len(_archives(sources)) == 1
    assert json.loads(_backupctl(sources, "status").stdout)["last_result"] == "failed"


def _second_stack(sources: Sources, stack: str) -> Sources:
    """The same sources backed up by another stack's job, with archives of its own."""
    config = json.loads(sources.config.read_text())
    config.update(stack=stack, archive_dir=str(sources.archives.parent / f"archives-{stack}"))
    path = sources.config.parent / f"backup-{stack}.json"
    path.write_text(json.dumps(config))
    return replace(sources, config=path, archives=Path(config["archive_dir"]))


SHARING = [
    pytest.param(False, KEYS, id="unencrypted"),
    pytest.param(True, KEYS, id="encrypted-same-keys"),
    pytest.param(True, ("another password of at least 32 characters", "another salt of at least 32 characters"), id="encrypted-own-keys"),
]


def test_a_listed_name_that_is_not_utf8_is_not_this_stacks_and_breaks_no_listing() -> None:
    # Another stack's encrypted name, decrypted with this stack's keys: bytes at random (a padding
    # that happens to check out lets rclone print it).
    listing = b"prod.backup-20261207T020000Z.tar\n\xdc\x9f\xff-foreign\nstaging.backup-20261207T020000Z.tar\n"
    names = archives.listed_names(listing)
    assert len(names) == 3
    assert archives.owned_archives("prod", names) == ["backup-20261207T020000Z.tar"]


@pytest.mark.parametrize(("encrypt", "staging_keys"), SHARING)
def test_two_stacks_sharing_one_offsite_directory_never_overwrite_count_or_prune_each_others_archives(
    sources: Sources, tmp_path: Path, encrypt: bool, staging_keys: tuple[str, str]
) -> None:
    shared = f"offsite:{tmp_path / 'shared'}"
    prod = _second_stack(sources, "prod")
    staging = _second_stack(sources, "staging")
    _with_offsite(prod, tmp_path, stack="prod", encrypt=encrypt, directory=shared, keep_count=2)
    _with_offsite(staging, tmp_path, stack="staging", encrypt=encrypt, keys=staging_keys, directory=shared, keep_count=2)
    taken: dict[str, list[str]] = {"prod": [], "staging": []}
    for _ in range(3):
        # Both at once, as test/staging and prod on one schedule minute: same second, same local name.
        runs = {stack: subprocess.Popen([sys.executable, str(IMAGE_DIR / "backupctl.py"), "--config", str(job.config), "now"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_backupctl_env(job))
                for stack, job in (("prod", prod), ("staging", staging))}
        for stack, process in runs.items():
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr
            taken[stack].append(json.loads(stdout.splitlines()[-1])["archive"])

        for stack, job in (("prod", prod), ("staging", staging)):
            listed = _backupctl(job, "list", "--offsite")
            assert listed.returncode == 0, listed.stderr
            # Offsite retention keeps each stack's two newest; every one of them is still there.
            assert listed.stdout.split() == sorted(taken[stack], reverse=True)[:2], stack
    assert len(_files(tmp_path / "shared")) == 4
    for stack, job in (("prod", prod), ("staging", staging)):
        shutil.rmtree(job.archives)
        assert _backupctl(job, "fetch", "latest").stdout.strip() == max(taken[stack])
        assert _manifest(job.archives / max(taken[stack]))["stack"] == stack


def test_what_lands_offsite_encrypted_is_no_tar_names_nothing_and_decrypts_with_the_rendered_key(sources: Sources, tmp_path: Path) -> None:
    section = _with_offsite(sources, tmp_path / "offsite", encrypt=True)
    archive = _take_backup(sources)

    [landed] = _files(tmp_path / "offsite")
    assert landed.parent == tmp_path / "offsite" / "selfhosted-test"
    assert not tarfile.is_tarfile(landed)
    assert "backup" not in landed.name and "test" not in landed.name
    assert archive.read_bytes()[:512] not in landed.read_bytes()
    # Decrypted with the rendered section alone, by rclone, as an operator would without the deployment.
    plain = tmp_path / "decrypted"
    subprocess.run(["rclone", "--config", section["rclone_config"], "copy", f"{render.OFFSITE_CRYPT_REMOTE}:", str(plain)],
                   check=True, capture_output=True)
    assert (plain / f"selfhosted-test.{archive.name}").read_bytes() == archive.read_bytes()


def test_encrypted_offsite_copies_cannot_be_read_with_another_key(sources: Sources, tmp_path: Path) -> None:
    _with_offsite(sources, tmp_path / "offsite", encrypt=True)
    _take_backup(sources)
    _with_offsite(sources, tmp_path / "offsite", encrypt=True, keys=("a wrong password, 32 characters long", "a wrong salt, thirty-two characters"))
    shutil.rmtree(sources.archives)
    result = _backupctl(sources, "fetch", "latest")
    assert result.returncode == 1
    assert "no archive of selfhosted-test in offsite:" in result.stderr


@pytest.mark.parametrize("encrypt", [False, True], ids=["unencrypted", "encrypted"])
def test_restore_from_the_offsite_copy_when_the_local_archives_are_gone(sources: Sources, tmp_path: Path, encrypt: bool) -> None:
    _with_offsite(sources, tmp_path / "offsite", encrypt=encrypt)
    archive = _take_backup(sources)
    shutil.rmtree(sources.archives)
    sources.postgres.sql("DELETE FROM events")
    sources.mariadb.sql("DELETE FROM voicegrow.devices")
    (sources.synapse_data / "signing.key").write_text("ed25519 a_NEW a fresh stack's key\n")

    fetched = _backupctl(sources, "fetch", "latest")
    assert (fetched.returncode, fetched.stdout.strip()) == (0, archive.name), fetched.stderr
    result = _backupctl(sources, "restore", "latest")

    assert result.returncode == 0, result.stderr
    assert sources.postgres.sql("SELECT body FROM events ORDER BY id") == "hello from before the backup\nünïcödé ✓"
    assert sources.mariadb.sql("SELECT name FROM voicegrow.devices ORDER BY id") == "speaker in the kitchen\n客厅"
    assert (sources.synapse_data / "signing.key").read_text() == "ed25519 a_OLD signing-key-material\n"


def test_fetch_reads_an_archive_copied_before_stacks_had_directories_of_their_own_if_it_is_the_stacks(sources: Sources, tmp_path: Path) -> None:
    _with_offsite(sources, tmp_path / "offsite", encrypt=True)
    archive = _take_backup(sources)
    (tmp_path / "offsite" / archive.name).write_bytes(archive.read_bytes())  # where the old layout put it, plain
    shutil.rmtree(sources.archives)

    assert _backupctl(sources, "fetch", archive.name).stdout.strip() == archive.name
    shutil.rmtree(sources.archives)
    config = json.loads(sources.config.read_text())
    config["stack"] = "prod"
    sources.config.write_text(json.dumps(config))
    result = _backupctl(sources, "fetch", archive.name)
    assert result.returncode == 1 and "is an archive of stack 'test', not of 'prod'" in result.stderr
    assert _archives(sources) == []


# One engine as the docker CLI answers restore.sh, its backup container being the real backupctl.
FAKE_ENGINE_DOCKER = r"""#!/bin/bash
echo "$*" >>"$CALLS"
case "$*" in
  "service inspect p-backup") exit 1 ;;
  "inspect -f {{.State.Status}} p-backup") echo running ;;
  "exec p-backup backupctl "*) shift 3; exec $BACKUPCTL "$@" ;;
  "stop "* | "start "*) ;;
  "inspect -f {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}} "*) echo healthy ;;
  *) echo "unexpected: docker $*" >&2; exit 99 ;;
esac
"""


def test_the_restore_script_restores_from_the_offsite_copy_when_the_local_archives_are_gone(sources: Sources, tmp_path: Path) -> None:
    _with_offsite(sources, tmp_path / "offsite", encrypt=True)
    archive = _take_backup(sources)
    shutil.rmtree(sources.archives)
    sources.postgres.sql("DELETE FROM events")
    fake_docker = tmp_path / "bin" / "docker"
    fake_docker.parent.mkdir()
    fake_docker.write_text(FAKE_ENGINE_DOCKER)
    fake_docker.chmod(0o755)
    calls = tmp_path / "calls"
    env = _backupctl_env(sources)
    env.update(PATH=f"{fake_docker.parent}:{env['PATH']}", PREFIX="p", CALLS=str(calls),
               BACKUPCTL=f"{sys.executable} {IMAGE_DIR / 'backupctl.py'} --config {sources.config}")

    result = subprocess.run(["bash", str(ROOT / "scripts" / "restore.sh"), "test", "--offsite"], capture_output=True, text=True,
                            env=env, timeout=300)

    assert result.returncode == 0, result.stderr
    assert f"restore: fetched {archive.name} from the offsite copy" in result.stdout
    assert f"exec p-backup backupctl restore {archive.name} --only synapse,mysql,media,bucket" in calls.read_text()
    assert sources.postgres.sql("SELECT body FROM events ORDER BY id") == "hello from before the backup\nünïcödé ✓"


def test_a_fetched_archive_that_does_not_match_its_manifest_is_not_kept(sources: Sources, tmp_path: Path) -> None:
    _with_offsite(sources, tmp_path / "offsite")
    archive = _take_backup(sources)
    copy = tmp_path / "offsite" / "selfhosted-test" / f"selfhosted-test.{archive.name}"
    with tarfile.open(copy) as opened:
        offset = opened.getmember("synapse-media.tar.gz").offset_data
    data = bytearray(copy.read_bytes())
    data[offset + 100] ^= 0xFF
    copy.write_bytes(bytes(data))
    shutil.rmtree(sources.archives)

    result = _backupctl(sources, "fetch", "latest")

    assert result.returncode == 1 and "does not match its manifest" in result.stderr
    assert not [path for path in sources.archives.iterdir() if not path.name.startswith(".")]


def test_services_lists_the_containers_to_stop_once_each(sources: Sources) -> None:
    assert _backupctl(sources, "services").stdout.split() == ["selfhosted-test-synapse", "selfhosted-test-voicegrow-server"]


def test_services_of_one_part_are_only_the_containers_writing_its_data(sources: Sources) -> None:
    assert _backupctl(sources, "services", "--only", "mysql").stdout.split() == ["selfhosted-test-voicegrow-server"]


# --- one part at a time --------------------------------------------------------------------------


def _set_job(sources: Sources, **changes: object) -> None:
    job = json.loads(sources.config.read_text())
    sources.config.write_text(json.dumps({**job, **changes}))


def _parts_in(archive: Path) -> list[str]:
    return sorted(_manifest(archive)["parts"])


def test_a_run_of_one_part_archives_that_part_and_the_configuration(sources: Sources) -> None:
    result = _backupctl(sources, "now", "--only", "mysql")
    assert result.returncode == 0, result.stderr
    archive = sources.archives / json.loads(result.stdout.splitlines()[-1])["archive"]
    assert _parts_in(archive) == ["configs.tar.gz", "voicegrow-mysql.sql.gz"]


def test_a_run_of_a_part_the_stack_lacks_fails_naming_its_parts(sources: Sources) -> None:
    result = _backupctl(sources, "now", "--only", "minio")
    assert result.returncode == 1
    assert "no part minio in this stack; its parts: synapse, mysql, media, bucket" in result.stderr


def test_restoring_mysql_only_leaves_synapse_data_written_after_the_backup(sources: Sources) -> None:
    archive = _take_backup(sources)
    sources.mariadb.sql("DELETE FROM voicegrow.devices")
    sources.postgres.sql("INSERT INTO events (body) VALUES ('a message after the backup')")
    (sources.bucket / "written-after-backup.txt").write_text("newer\n")

    result = _backupctl(sources, "restore", archive.name, "--only", "mysql")

    assert result.returncode == 0, result.stderr
    assert sources.mariadb.sql("SELECT name FROM voicegrow.devices ORDER BY id") == "speaker in the kitchen\n客厅"
    assert "a message after the backup" in sources.postgres.sql("SELECT body FROM events")
    assert (sources.bucket / "written-after-backup.txt").exists()


def test_latest_takes_each_part_from_the_newest_archive_holding_it(sources: Sources) -> None:
    full = _take_backup(sources)
    sources.mariadb.sql("INSERT INTO voicegrow.devices VALUES (3, 'in the mysql-only archive')")
    time.sleep(1.1)  # archive names have a one-second resolution
    mysql_only = sources.archives / json.loads(_backupctl(sources, "now", "--only", "mysql").stdout.splitlines()[-1])["archive"]
    sources.mariadb.sql("DELETE FROM voicegrow.devices")
    sources.postgres.sql("DELETE FROM events")

    planned = _backupctl(sources, "plan", "latest")
    restored = _backupctl(sources, "restore", "latest")

    assert planned.stdout.splitlines() == [f"{full.name} synapse,media,bucket", f"{mysql_only.name} mysql"]
    assert restored.returncode == 0, restored.stderr
    assert sources.mariadb.sql("SELECT COUNT(*) FROM voicegrow.devices") == "3"
    assert sources.postgres.sql("SELECT COUNT(*) FROM events") == "2"


SIGNING_KEY = Path("signing.key")
MEDIA_FILE = Path("media_store/local_content/ab/cd/efghijkl")


def _members(archive: Path, part: str, tmp_path: Path) -> list[str]:
    with tarfile.open(archive) as opened:
        opened.extract(part, tmp_path, filter="data")
    with tarfile.open(tmp_path / part) as inner:
        return sorted(inner.getnames())


def test_the_media_part_is_where_synapse_keeps_its_media() -> None:
    assert synapse_render.MEDIA_STORE_PATH == f"{synapse_render.DATA_DIR}/{backupctl.MEDIA_STORE}"


def test_the_synapse_part_holds_the_database_and_the_data_volume_without_its_media_store(sources: Sources, tmp_path: Path) -> None:
    archive = sources.archives / json.loads(_backupctl(sources, "now", "--only", "synapse").stdout.splitlines()[-1])["archive"]
    assert _parts_in(archive) == ["configs.tar.gz", "synapse-files.tar.gz", "synapse-postgres.pgdump"]
    assert _members(archive, "synapse-files.tar.gz", tmp_path) == [".", "./signing.key"]


def test_the_media_part_holds_the_media_store_alone(sources: Sources, tmp_path: Path) -> None:
    archive = sources.archives / json.loads(_backupctl(sources, "now", "--only", "media").stdout.splitlines()[-1])["archive"]
    assert _parts_in(archive) == ["configs.tar.gz", "synapse-media.tar.gz"]
    assert "./local_content/ab/cd/efghijkl" in _members(archive, "synapse-media.tar.gz", tmp_path)


def _change_synapse(sources: Sources) -> None:
    """After the backup: a new row, a new signing key, the media store gone and a new upload."""
    sources.postgres.sql("INSERT INTO events (body) VALUES ('a message after the backup')")
    (sources.synapse_data / SIGNING_KEY).write_text("ed25519 a_NEW a fresh stack's key\n")
    shutil.rmtree(sources.synapse_data / "media_store")
    (sources.synapse_data / "media_store" / "uploaded-later").mkdir(parents=True)


def test_restoring_synapse_alone_brings_back_its_database_and_key_and_leaves_the_media_store(sources: Sources) -> None:
    archive = _take_backup(sources)
    _change_synapse(sources)

    result = _backupctl(sources, "restore", archive.name, "--only", "synapse")

    assert result.returncode == 0, result.stderr
    assert "a message after the backup" not in sources.postgres.sql("SELECT body FROM events")
    assert (sources.synapse_data / SIGNING_KEY).read_text() == "ed25519 a_OLD signing-key-material\n"
    assert (sources.synapse_data / "media_store" / "uploaded-later").is_dir()
    assert not (sources.synapse_data / MEDIA_FILE).exists()


@pytest.mark.parametrize("layout", ["new", "old"])
def test_a_backup_taken_before_any_media_restores_an_empty_media_store_synapse_can_write(sources: Sources, layout: str) -> None:
    # Synapse has stored no media yet, at the backup and still at the restore (a fresh volume).
    shutil.rmtree(sources.synapse_data / "media_store")
    archive = _take_backup(sources) if layout == "new" else _old_layout_archive(sources)

    result = _backupctl(sources, "restore", archive.name, "--only", "media")

    assert result.returncode == 0, result.stderr
    media = sources.synapse_data / "media_store"
    assert list(media.iterdir()) == []
    assert (media.stat().st_uid, media.stat().st_mode) == (sources.synapse_data.stat().st_uid, sources.synapse_data.stat().st_mode)


def _dump_old_synapse_data(job: backupctl.Job, target: Path, work: Path) -> None:
    """How runs wrote Synapse's data before media had a part of its own: the whole volume in one file."""
    assert job.synapse_data is not None
    backupctl.run(["tar", "--create", "--gzip", "--numeric-owner", "--exclude=./homeserver.pid", "--file", str(target),
                   "--directory", str(job.synapse_data), "."])


def _old_layout_archive(sources: Sources) -> Path:
    """An archive as runs wrote it before the media part: the database, synapse-data.tar.gz, MySQL, the bucket."""
    job = backupctl.Job.load(str(sources.config))
    written = {part.name: part for part in backupctl.PARTS}
    parts = [
        written["synapse-postgres.pgdump"],
        written["voicegrow-mysql.sql.gz"],
        backupctl.Part(backupctl.OLD_SYNAPSE_DATA, _dump_old_synapse_data, None, lambda job: True, group="synapse"),
        written["voicegrow-bucket.tar.gz"],
    ]
    sources.archives.mkdir(exist_ok=True)
    work = sources.archives / ".work-old"
    work.mkdir()
    taken = datetime.now(timezone.utc) - timedelta(hours=1)
    target = sources.archives / archives.archive_name(taken)
    backupctl.write_archive(target, work, parts, job, taken)
    work.rmdir()
    return target


def test_an_old_layout_archive_holds_both_synapse_and_media(sources: Sources) -> None:
    archive = _old_layout_archive(sources)
    planned = _backupctl(sources, "plan", archive.name)
    assert planned.stdout.split() == [archive.name, "synapse,mysql,media,bucket"], planned.stderr


def test_an_old_layout_archive_restores_whole(sources: Sources) -> None:
    _old_layout_archive(sources)
    _change_synapse(sources)

    result = _backupctl(sources, "restore", "latest")

    assert result.returncode == 0, result.stderr
    assert (sources.synapse_data / SIGNING_KEY).read_text() == "ed25519 a_OLD signing-key-material\n"
    assert (sources.synapse_data / MEDIA_FILE).stat().st_size == 4096
    assert not (sources.synapse_data / "media_store" / "uploaded-later").exists()
    assert "a message after the backup" not in sources.postgres.sql("SELECT body FROM events")


def test_an_old_layout_archive_restores_synapse_without_touching_the_media_store(sources: Sources) -> None:
    archive = _old_layout_archive(sources)
    _change_synapse(sources)

    result = _backupctl(sources, "restore", archive.name, "--only", "synapse")

    assert result.returncode == 0, result.stderr
    assert (sources.synapse_data / SIGNING_KEY).read_text() == "ed25519 a_OLD signing-key-material\n"
    assert (sources.synapse_data / "media_store" / "uploaded-later").is_dir()
    assert not (sources.synapse_data / MEDIA_FILE).exists()


@pytest.mark.parametrize("layout", ["current", "old"])
def test_restoring_media_alone_brings_back_the_media_store_and_leaves_the_database_and_key(sources: Sources, layout: str) -> None:
    archive = _take_backup(sources) if layout == "current" else _old_layout_archive(sources)
    _change_synapse(sources)

    result = _backupctl(sources, "restore", archive.name, "--only", "media")

    assert result.returncode == 0, result.stderr
    assert (sources.synapse_data / MEDIA_FILE).stat().st_size == 4096
    assert not (sources.synapse_data / "media_store" / "uploaded-later").exists()
    assert "a message after the backup" in sources.postgres.sql("SELECT body FROM events")
    assert (sources.synapse_data / SIGNING_KEY).read_text() == "ed25519 a_NEW a fresh stack's key\n"


def test_restoring_a_part_the_archive_lacks_is_refused_and_changes_nothing(sources: Sources) -> None:
    archive = sources.archives / json.loads(_backupctl(sources, "now", "--only", "mysql").stdout.splitlines()[-1])["archive"]
    sources.postgres.sql("INSERT INTO events (body) VALUES ('after')")

    result = _backupctl(sources, "restore", archive.name, "--only", "synapse")

    assert result.returncode == 1
    assert f"{archive.name} holds no synapse part (it holds mysql)" in result.stderr
    assert "after" in sources.postgres.sql("SELECT body FROM events")


def _run(sources: Sources, parts: str) -> str:
    time.sleep(1.1)  # archive names have a one-second resolution
    result = _backupctl(sources, "now", "--only", parts)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])["archive"]


def test_retention_keeps_the_newest_archive_of_every_part(sources: Sources) -> None:
    full = _take_backup(sources)
    for _ in range(3):  # keep_count is 3: the full archive is the fourth newest holding mysql
        _run(sources, "mysql")
    assert full.name in _archives(sources)
    _set_job(sources, retention={part: {"keep_days": 7, "keep_count": 1} for part in BACKUP_PARTS})
    _run(sources, "synapse,media,bucket")
    assert full.name not in _archives(sources)


def test_each_part_keeps_its_own_copies_and_an_archive_goes_when_no_part_keeps_it(sources: Sources) -> None:
    # The databases three copies, the media store and the bucket one: as prod keeps more database copies.
    _set_job(sources, retention={"synapse": {"keep_days": 7, "keep_count": 3}, "mysql": {"keep_days": 7, "keep_count": 3},
                                 "media": {"keep_days": 7, "keep_count": 1}, "bucket": {"keep_days": 7, "keep_count": 1}})
    full = _take_backup(sources).name
    databases = [_run(sources, "synapse,mysql") for _ in range(2)]
    bulk = _run(sources, "media,bucket")

    # The full archive is still the third database copy, though a newer media and bucket copy exists.
    assert _archives(sources) == [bulk, databases[1], databases[0], full]

    newest = _run(sources, "synapse,mysql")

    assert _archives(sources) == [newest, bulk, databases[1], databases[0]]
    assert _parts_in(sources.archives / bulk) == ["configs.tar.gz", "synapse-media.tar.gz", "voicegrow-bucket.tar.gz"]


# --- pure logic ----------------------------------------------------------------------------------

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def _names(*hours_ago: float) -> list[str]:
    return [archives.archive_name(NOW - timedelta(hours=hours)) for hours in hours_ago]


def test_prods_default_retention_keeps_two_days_of_hourly_databases_and_a_week_of_daily_media() -> None:
    backup = resolve_settings("selfhosted", "prod", {"synapse": {"server_name": "example.com", "admin_username": "admin"},
                                                     "proxy": {"acme_email": "ops@example.com"}, "monitoring": ALERT_RECEIVERS}).backup
    assert (backup.schedule, backup.part_schedules.media, backup.part_schedules.bucket) == ("0 * * * *", "30 3 * * *", "30 3 * * *")
    hourly = _names(*range(0, 8 * 24))
    daily = _names(*(hours + 0.5 for hours in range(0, 8 * 24, 24)))
    holdings = {**{name: ["synapse", "mysql"] for name in hourly}, **{name: ["media", "bucket"] for name in daily}}
    retention = {part: archives.Retention(**getattr(backup.retention, part).model_dump()) for part in BACKUP_PARTS}

    pruned = archives.archives_no_part_keeps(holdings, NOW, retention)

    # Every hourly run of the last two days, and the daily runs of the last seven days.
    assert sorted(set(holdings) - set(pruned), reverse=True) == sorted([*hourly[: 2 * 24], *daily[:7]], reverse=True)


def test_pruning_keeps_the_newest_keep_count() -> None:
    names = _names(1, 2, 3, 4)
    assert archives.archives_to_prune(names, NOW, keep_days=7, keep_count=2) == names[2:]


def test_pruning_drops_archives_older_than_keep_days() -> None:
    names = _names(1, 24 * 8)
    assert archives.archives_to_prune(names, NOW, keep_days=7, keep_count=48) == names[1:]


def test_pruning_never_drops_the_newest_archive_however_old() -> None:
    assert archives.archives_to_prune(_names(24 * 30), NOW, keep_days=7, keep_count=1) == []


def test_pruning_ignores_files_that_are_not_archives() -> None:
    assert archives.archives_to_prune(["keep.tar", "backup-latest.tar", ".status.json"], NOW, 1, 1) == []


DAILY = CronSchedule.parse("0 2 * * *")


def test_a_fresh_container_is_healthy_during_its_first_interval() -> None:
    healthy, _ = backupctl.health_verdict(DAILY, None, started=NOW - timedelta(hours=23), at=NOW)
    assert healthy


def test_health_turns_unhealthy_when_the_last_success_is_older_than_twice_the_interval() -> None:
    healthy, message = backupctl.health_verdict(DAILY, NOW - timedelta(hours=49), started=NOW - timedelta(days=5), at=NOW)
    assert not healthy and "unhealthy" in message


def test_health_stays_healthy_within_twice_the_interval() -> None:
    healthy, _ = backupctl.health_verdict(DAILY, NOW - timedelta(hours=47), started=NOW - timedelta(days=5), at=NOW)
    assert healthy


def test_an_hourly_schedule_allows_two_hours() -> None:
    hourly = CronSchedule.parse("0 * * * *")
    assert not backupctl.health_verdict(hourly, NOW - timedelta(minutes=121), NOW - timedelta(days=1), NOW)[0]


# --- every script parses -------------------------------------------------------------------------


def test_restore_script_parses_with_bash() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "restore.sh")], check=True)


@pytest.mark.parametrize("wrapper", sorted(path.name for path in (IMAGE_DIR / "bin").iterdir()))
def test_image_wrappers_parse_with_sh_and_are_executable(wrapper: str) -> None:
    path = IMAGE_DIR / "bin" / wrapper
    subprocess.run(["sh", "-n", str(path)], check=True)
    assert os.access(path, os.X_OK)


@pytest.mark.parametrize("module", sorted(path.name for path in IMAGE_DIR.glob("*.py")))
def test_image_modules_compile_and_are_copied_into_the_image(module: str, tmp_path: Path) -> None:
    py_compile.compile(str(IMAGE_DIR / module), cfile=str(tmp_path / "compiled.pyc"), doraise=True)
    assert module in (IMAGE_DIR / "Dockerfile").read_text()


def test_restore_script_without_a_backup_container_fails_with_a_clear_message(tmp_path: Path) -> None:
    fake_docker = tmp_path / "docker"
    fake_docker.write_text("#!/bin/sh\nexit 1\n")
    fake_docker.chmod(0o755)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "restore.sh"), "staging"], capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert result.returncode == 1
    assert "no container selfhosted-staging-backup" in result.stderr


# A swarm's engine as the docker CLI answers restore.sh: the backup service's task runs here,
# Synapse's service has two replicas; the restore itself succeeds or fails as RESTORE_FAILS says.
FAKE_SWARM_DOCKER = r"""#!/bin/bash
echo "$*" >>"$CALLS"
case "$*" in
  "service inspect p-backup") exit 0 ;;
  "ps -q --filter label=com.docker.swarm.service.name=p-backup --filter status=running") echo task1 ;;
  "exec task1 backupctl plan latest") [ -n "$PLAN_LOST" ] || echo "backup-1.tar synapse" ;;
  "exec task1 backupctl services") echo p-synapse ;;
  "service inspect -f {{.Spec.Mode.Replicated.Replicas}} p-synapse") echo 2 ;;
  "service scale --detach p-synapse="*) ;;
  "service ps --format {{.CurrentState}} p-synapse") echo "Shutdown 1 second ago" ;;
  "service ps --filter desired-state=running --format {{.CurrentState}} p-synapse") printf 'Running 1 second ago\nRunning 2 seconds ago\n' ;;
  "exec task1 backupctl restore backup-1.tar --only synapse") exit "$RESTORE_FAILS" ;;
  *) echo "unexpected: docker $*" >&2; exit 99 ;;
esac
"""


def _restore_on_a_fake_swarm(tmp_path: Path, **environment: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """restore.sh for prod against FAKE_SWARM_DOCKER: its result, and the docker commands it ran."""
    fake_docker = tmp_path / "docker"
    fake_docker.write_text(FAKE_SWARM_DOCKER)
    fake_docker.chmod(0o755)
    calls = tmp_path / "calls"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "restore.sh"), "prod"], capture_output=True, text=True,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PREFIX": "p", "CALLS": str(calls), **environment},
    )
    return result, calls.read_text().splitlines()


@pytest.mark.parametrize("fails", [False, True])
def test_restore_on_swarm_scales_the_services_to_no_task_and_back_to_their_replicas(tmp_path: Path, fails: bool) -> None:
    result, calls = _restore_on_a_fake_swarm(tmp_path, RESTORE_FAILS=str(int(fails)))
    scaled = [line for line in calls if line.startswith("service scale")]
    if fails:
        assert result.returncode == 1 and scaled == ["service scale --detach p-synapse=0"]
        assert "start them with 'docker service scale p-synapse=2; '" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert scaled == ["service scale --detach p-synapse=0", "service scale --detach p-synapse=2"]
        assert "restore: p-synapse is running" in result.stdout


def test_restore_refuses_to_act_on_an_answer_the_engine_lost(tmp_path: Path) -> None:
    result, calls = _restore_on_a_fake_swarm(tmp_path, PLAN_LOST="1")
    assert result.returncode == 1
    assert "the engine returned no output for 'backupctl plan'" in result.stderr and "nothing was changed" in result.stderr
    assert not [line for line in calls if line.startswith(("service scale", "exec task1 backupctl restore"))]


def test_the_scheduler_runs_the_backup_when_due_and_logs_its_failure(sources: Sources, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _set_job(sources, metrics_port=None)  # the metrics port is the host's: another process may hold it
    config = json.loads(sources.config.read_text())
    config["postgres"]["database"] = "no_such_database"
    sources.config.write_text(json.dumps(config))
    scheduler = backupctl.Scheduler(backupctl.Job.load(str(sources.config)), str(sources.config))
    clock = [datetime(2025, 6, 1, 1, 59, 50, tzinfo=timezone.utc)]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)
        if clock[0] > datetime(2025, 6, 1, 2, 1, tzinfo=timezone.utc):
            scheduler.stopping = True  # one run is enough

    monkeypatch.setattr(backupctl, "now", lambda: clock[0])
    monkeypatch.setattr(backupctl.time, "sleep", sleep)
    monkeypatch.setattr(backupctl.signal, "signal", lambda signum, handler: None)  # leave pytest's handlers alone
    monkeypatch.setenv("PATH", f"{sources.postgres.bindir}:{os.environ['PATH']}")

    assert scheduler.run() == 0

    log = capfd.readouterr().err
    assert "next run 2025-06-01T02:00:00Z" in log
    assert "backup FAILED" in log
    assert "scheduled backup failed with exit status 1" in log
    assert log.rstrip().endswith("scheduler stopped")


def test_a_deploy_s_archive_says_it_was_taken_before_a_change() -> None:
    name = archives.archive_name(NOW, archives.BEFORE_CHANGE)
    assert name == "backup-20250601T120000Z-before-change.tar"
    assert archives.archive_time(name) == NOW


def test_archives_taken_before_a_change_count_with_the_scheduled_ones() -> None:
    scheduled, before_change = archives.archive_name(NOW - timedelta(hours=2)), archives.archive_name(NOW, archives.BEFORE_CHANGE)
    assert archives.archives_newest_first(["notes.txt", scheduled, before_change]) == [before_change, scheduled]


def _run_scheduler_until(sources: Sources, monkeypatch: pytest.MonkeyPatch, start: datetime, stop: datetime) -> list[list[str]]:
    """Run the scheduler on a fake clock from `start` until `stop`; the `now` commands it started."""
    _set_job(sources, metrics_port=None)  # another test's scheduler may hold the port
    scheduler = backupctl.Scheduler(backupctl.Job.load(str(sources.config)), str(sources.config))
    clock = [start]
    started: list[list[str]] = []

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)
        scheduler.stopping = clock[0] > stop

    class Run:
        def __init__(self, argv: list[str], env: dict[str, str]) -> None:
            started.append(argv[argv.index("--config") + 2:])

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(backupctl, "now", lambda: clock[0])
    monkeypatch.setattr(backupctl.time, "sleep", sleep)
    monkeypatch.setattr(backupctl.signal, "signal", lambda signum, handler: None)
    monkeypatch.setattr(backupctl.subprocess, "Popen", Run)
    assert scheduler.run() == 0
    return started


def test_the_schedule_is_read_in_the_jobs_time_zone(sources: Sources, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _set_job(sources, timezone="Asia/Shanghai")
    # 02:00 in Shanghai is 18:00 UTC the day before.
    runs = _run_scheduler_until(sources, monkeypatch, datetime(2025, 5, 31, 17, 59, tzinfo=timezone.utc),
                                datetime(2025, 5, 31, 18, 1, tzinfo=timezone.utc))
    assert runs == [["now"]]
    assert "next run 2025-05-31T18:00:00Z (2025-06-01 02:00 Asia/Shanghai): every part" in capfd.readouterr().err


def test_a_part_with_its_own_schedule_is_backed_up_on_it_alone(sources: Sources, monkeypatch: pytest.MonkeyPatch) -> None:
    # VoiceGrow guide §6.1: MySQL daily, MinIO weekly (Sunday 03:00).
    _set_job(sources, part_schedules={"bucket": "0 3 * * 0"})
    runs = _run_scheduler_until(sources, monkeypatch, datetime(2025, 5, 31, 1, 0, tzinfo=timezone.utc),
                                datetime(2025, 6, 2, 3, 0, tzinfo=timezone.utc))  # Saturday 01:00 to Monday 03:00
    daily = ["now", "--only", "synapse,mysql,media"]
    assert runs == [daily, daily, ["now", "--only", "bucket"], daily]


# --- Synapse's remote media purge -------------------------------------------------------------


class FakeSynapse(http.server.ThreadingHTTPServer):
    """Synapse's login, purge_media_cache and logout endpoints, recording each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                server.calls.append((self.path, body, self.headers.get("Authorization")))
                if self.path == "/_matrix/client/v3/login":
                    answer = {"access_token": "token-1"} if body.get("password") == "admin pass" else None
                else:
                    answer = {"deleted": 3} if self.path.startswith("/_synapse/admin/v1/purge_media_cache") else {}
                data = json.dumps(answer or {"errcode": "M_FORBIDDEN"}).encode()
                self.send_response(200 if answer is not None else 403)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture
def synapse_api(sources: Sources, tmp_path: Path) -> Iterator[FakeSynapse]:
    server = FakeSynapse()
    (tmp_path / "secrets" / "synapse-admin-password").write_text("admin pass")
    _set_job(sources, media_purge={
        "schedule": "0 4 1 * *", "max_age_days": 30, "synapse_url": f"http://127.0.0.1:{server.server_port}",
        "admin_user": "admin", "password_file": str(tmp_path / "secrets" / "synapse-admin-password"),
    })
    yield server
    server.shutdown()


def test_the_media_purge_logs_in_purges_media_older_than_its_age_and_logs_out(sources: Sources, synapse_api: FakeSynapse) -> None:
    started = datetime.now(timezone.utc)
    result = _backupctl(sources, "purge-media")

    assert result.returncode == 0, result.stderr
    (login, _, _), (purge, _, authorization), (logout, _, _) = synapse_api.calls
    assert login == "/_matrix/client/v3/login"
    before = int(purge.split("before_ts=")[1]) / 1000
    assert abs(before - (started - timedelta(days=30)).timestamp()) < 60
    assert authorization == "Bearer token-1"
    assert logout == "/_matrix/client/v3/logout"
    assert "media purge: 3 remote media files not accessed since" in result.stderr


def test_a_refused_login_fails_the_purge_with_synapses_answer(sources: Sources, synapse_api: FakeSynapse, tmp_path: Path) -> None:
    (tmp_path / "secrets" / "synapse-admin-password").write_text("wrong")
    result = _backupctl(sources, "purge-media")
    assert result.returncode == 1
    assert "media purge FAILED: POST /_matrix/client/v3/login: HTTP 403" in result.stderr


def test_the_scheduler_runs_the_media_purge_on_its_own_schedule(sources: Sources, synapse_api: FakeSynapse, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _run_scheduler_until(sources, monkeypatch, datetime(2025, 5, 31, 23, 0, tzinfo=timezone.utc),
                                datetime(2025, 6, 1, 5, 0, tzinfo=timezone.utc))
    assert runs == [["now"], ["purge-media"]]


# --- Synapse's state compression --------------------------------------------------------------

# Records how the backup tool calls the compressor (the real one is run end to end).
FAKE_COMPRESSOR = """
import json, os
def compress_state_events_table(db_url, chunk_size, default_levels, number_of_chunks):
    with open(os.environ["COMPRESSOR_CALLS"], "a") as calls:
        calls.write(json.dumps([db_url, chunk_size, default_levels, number_of_chunks]) + "\\n")
"""


@pytest.fixture
def compression(sources: Sources) -> None:
    _set_job(sources, state_compression={"schedule": "30 4 * * *", "chunk_size": 500, "number_of_chunks": 100, "levels": "100,50,25"})
    sources.postgres.sql("DROP TABLE IF EXISTS state_groups_state; CREATE TABLE state_groups_state (state_group bigint);"
                         "INSERT INTO state_groups_state SELECT generate_series(1, 42)")


def test_state_compression_runs_the_compressor_with_the_jobs_limits_and_password(
    sources: Sources, compression: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "synapse_auto_compressor.py").write_text(FAKE_COMPRESSOR)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "modules"))
    monkeypatch.setenv("COMPRESSOR_CALLS", str(tmp_path / "calls"))

    result = _backupctl(sources, "compress-state")

    assert result.returncode == 0, result.stderr
    url = f"postgresql://synapse:pg%3Apa%5Css%22word@127.0.0.1:{sources.postgres.port}/synapse"
    assert json.loads((tmp_path / "calls").read_text()) == [url, 500, "100,50,25", 100]
    assert "state compression: state_groups_state 42 -> 42 rows" in result.stderr


def test_state_compression_without_the_compressor_fails_saying_so(sources: Sources, compression: None) -> None:
    result = _backupctl(sources, "compress-state")
    assert result.returncode == 1
    assert "state compression FAILED: synapse_auto_compressor is not in this image" in result.stderr


def test_the_scheduler_runs_the_state_compression_on_its_own_schedule(sources: Sources, compression: None, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _run_scheduler_until(sources, monkeypatch, datetime(2025, 6, 1, 1, 0, tzinfo=timezone.utc),
                                datetime(2025, 6, 1, 5, 0, tzinfo=timezone.utc))
    assert runs == [["now"], ["compress-state"]]
