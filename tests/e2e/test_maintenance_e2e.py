"""Maintenance on a live `test` stack: schedules in local time, remote media purged, one part restored alone.

The stack runs Synapse and VoiceGrow with backups in Asia/Shanghai time, as the guides' hosts
are. Synapse's cache holds two pieces of another server's media, one not accessed for 60 days
and one for a day. The operator gives MySQL a backup schedule of its own and the remote media
purge the same minute, a minute ahead (`pulumi up` replaces the backup container): at that
local minute an archive holding MySQL only appears, and the purge deletes the old media and
keeps the recent. A busy room's state grows `state_groups_state`; the state compressor shrinks
it, and Synapse still serves the room's history and state. Then a backup is taken, a Matrix
message is written after it, MySQL loses its rows, and `scripts/restore.sh test ARCHIVE --only
mysql` brings the rows back without stopping Synapse or losing the message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import docker
import pytest

from tests.e2e.container_exec import ExecResult, run_in
from tests.e2e.harness import AppliedStack, apply_program
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.matrix_client import converse, read_messages
from tests.e2e.stacks import MYSQL, PROBE_IMAGE, ROOT, host_ports, local_overrides, record_figure

pytestmark = pytest.mark.e2e

PREFIX = "e2e-maint"
PORT = host_ports(18900)
BASE_URL = f"http://127.0.0.1:{PORT}"
IMAGES = ("postgres", "synapse", "mysql", "redis", "minio", "probe")
ZONE = "Asia/Shanghai"
ROW = "a device row 你好"
PSQL = "psql -U synapse -d synapse -At -c"
REMOTE = "remote.example.org"
# media id -> (filesystem id, days since last access)
REMOTE_MEDIA = {"oldMedia": ("abcdold60days", 60), "recentMedia": ("abcdnew1day", 1)}
# A busy room: devices each with a state event of their own, then one of them changing often.
DEVICES = 120
CHANGES = 230


def _docker(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=600, check=False)


def _in(container: str, *argv: str) -> ExecResult:
    """A command in one of the stack's containers (stdout and stderr apart)."""
    return run_in(docker.from_env().containers.get(f"{PREFIX}-{container}"), argv, apart=True)


def _query(container: str, script: str) -> str:
    result = _in(container, "sh", "-c", script)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def _mysql(statement: str) -> str:
    return _query("voicegrow-mysql", f'{MYSQL} "{statement}"')


def _sql(statement: str) -> str:
    return _query("synapse-postgres", f'{PSQL} "{statement}"')


def _remote_file(file_id: str) -> str:
    return f"/data/media_store/remote_content/{REMOTE}/{file_id[:2]}/{file_id[2:4]}/{file_id[4:]}"


def _remote_files_present() -> set[str]:
    present = set()
    for media_id, (file_id, _) in REMOTE_MEDIA.items():
        if _docker("exec", f"{PREFIX}-synapse", "test", "-f", _remote_file(file_id)).returncode == 0:
            present.add(media_id)
    return present


def _started_at(container: str) -> str:
    return _docker("inspect", "-f", "{{.State.StartedAt}}", f"{PREFIX}-{container}").stdout.strip()


def _archives(archive_dir: Path) -> set[str]:
    return {path.name for path in archive_dir.glob("backup-*.tar")}


def _parts(archive: Path) -> list[str]:
    with tarfile.open(archive) as opened:
        member = opened.extractfile("manifest.json")
        assert member is not None
        return sorted(json.loads(member.read())["parts"])


@pytest.fixture(scope="module")
def archive_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="e2e-maint-archives-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def overrides(archive_dir: Path) -> dict:
    return local_overrides(
        PREFIX,
        PORT,
        {
            "proxy": {"enabled": False},
            "voicegrow": {"server_image": PROBE_IMAGE},
            "backup": {"enabled": True, "host_path": str(archive_dir), "timezone": ZONE},
            # The room is grown by one client as fast as Synapse takes it.
            "synapse": {"extra_config": {"rc_message": {"per_second": 1000, "burst_count": 1000}}, "state_compression": {"enabled": True}},
            "resources": {"synapse": {"cpus": 1.5}},
        },
    )


@pytest.fixture(scope="module")
def stack(overrides: dict) -> Iterator[list[AppliedStack]]:
    """The deployed stack, and each update of it (the newest last); destroyed at the end."""
    require_engine()
    built = subprocess.run(["bash", str(ROOT / "tests" / "e2e" / "images" / "build.sh"), *IMAGES], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.skip(f"the stand-in images could not be built: {built.stderr.strip()[-500:]}")
    stacks = [apply_program(ROOT, "test", overrides)]
    try:
        yield stacks
    finally:
        stacks[0].destroy()


@pytest.fixture(scope="module")
def remote_media(stack: list[AppliedStack]) -> None:
    """Another server's media in Synapse's cache, as federation leaves it: rows and files."""
    now_ms = int(time.time() * 1000)
    for media_id, (file_id, days) in REMOTE_MEDIA.items():
        accessed = now_ms - days * 86_400_000
        _sql(
            "INSERT INTO remote_media_cache (media_origin, media_id, media_type, created_ts, upload_name, media_length, "
            f"filesystem_id, last_access_ts) VALUES ('{REMOTE}', '{media_id}', 'image/png', {accessed}, 'a.png', 4, '{file_id}', {accessed})"
        )
        path = _remote_file(file_id)
        created = _docker("exec", f"{PREFIX}-synapse", "sh", "-c", f"mkdir -p {Path(path).parent} && printf png > {path}")
        assert created.returncode == 0, created.stderr
    assert _remote_files_present() == set(REMOTE_MEDIA)


@pytest.fixture(scope="module")
def minute_ahead(stack: list[AppliedStack], overrides: dict, remote_media: None) -> datetime:
    """`pulumi up` giving MySQL's backup and the media purge a schedule two to three minutes
    ahead on Shanghai's clock: at least 90 s for the update, which replaces the backup job, to be
    done before that minute begins (its duration is recorded as a figure)."""
    now = datetime.now(ZoneInfo(ZONE))
    local = (now + timedelta(minutes=3 if now.second > 30 else 2)).replace(second=0, microsecond=0)
    schedule = f"{local.minute} {local.hour} * * *"
    changed = {
        **overrides,
        "backup": {**overrides["backup"], "part_schedules": {**overrides["backup"]["part_schedules"], "mysql": schedule}},
        "synapse": {**overrides["synapse"], "remote_media_purge": {"schedule": schedule}},
    }
    started = time.monotonic()
    stack.append(stack[-1].update(changed))
    record_figure("backup", "schedule_update_seconds", time.monotonic() - started)
    # Otherwise the scheduler started after the minute, and waits for tomorrow's: say so, not "no archive".
    assert datetime.now(ZoneInfo(ZONE)) < local, f"the update took {time.monotonic() - started:.0f} s, past {local:%H:%M}"
    return local


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def _backup_log() -> str:
    logs = _docker("logs", f"{PREFIX}-backup")
    return logs.stdout + logs.stderr


def test_a_part_schedule_fires_at_the_local_minute_asked(minute_ahead: datetime, archive_dir: Path) -> None:
    local = minute_ahead
    schedule = f"{local.minute} {local.hour} * * *"

    assert _wait_for(lambda: bool(_archives(archive_dir)), 300), f"no archive within 5 minutes of '{schedule}' ({ZONE})"
    (name,) = _archives(archive_dir)
    taken = datetime.strptime(name, "backup-%Y%m%dT%H%M%SZ.tar").replace(tzinfo=timezone.utc).astimezone(ZoneInfo(ZONE))
    assert (taken.hour, taken.minute) == (local.hour, local.minute)
    assert _parts(archive_dir / name) == ["configs.tar.gz", "voicegrow-mysql.sql.gz"]
    assert f"schedule '{schedule}' ({ZONE}): mysql" in _backup_log()
    record_figure("backup", "scheduled_run_seconds_after_the_minute", taken.second)


def test_the_scheduled_purge_deletes_old_remote_media_and_keeps_recent(minute_ahead: datetime) -> None:
    assert _wait_for(lambda: "media purge:" in _backup_log(), 300), _backup_log()[-2000:]
    assert "media purge: 1 remote media files not accessed since" in _backup_log()
    assert _remote_files_present() == {"recentMedia"}
    assert _sql(f"SELECT media_id FROM remote_media_cache WHERE media_origin = '{REMOTE}'") == "recentMedia"


def _client_api(method: str, path: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{BASE_URL}{path}", data=None if body is None else json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _grown_room() -> tuple[str, str]:
    """A room with DEVICES state keys, then CHANGES changes of one of them; its id and a user's token."""
    created = _docker("exec", f"{PREFIX}-synapse", "register_new_matrix_user", "-c", "/config/homeserver.yaml",
                      "-u", "grower", "-p", "a long password", "--no-admin", "http://localhost:8008")
    assert created.returncode == 0, created.stderr
    login = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "grower"}, "password": "a long password"}
    request = urllib.request.Request(f"{BASE_URL}/_matrix/client/v3/login", data=json.dumps(login).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        token = json.loads(response.read())["access_token"]
    room = _client_api("POST", "/_matrix/client/v3/createRoom", token, {"name": "busy"})["room_id"]
    for device in range(DEVICES):
        _client_api("PUT", f"/_matrix/client/v3/rooms/{room}/state/org.example.device/d{device}", token, {"volume": 0})
    for change in range(1, CHANGES + 1):
        _client_api("PUT", f"/_matrix/client/v3/rooms/{room}/state/org.example.device/d0", token, {"volume": change})
    return room, token


def test_the_compressor_shrinks_a_grown_state_table_and_synapse_still_serves_the_room(stack: list[AppliedStack]) -> None:
    started = time.monotonic()
    room, token = _grown_room()
    grow_seconds = time.monotonic() - started
    before = int(_sql("SELECT count(*) FROM state_groups_state"))

    run = _in("backup", "backupctl", "compress-state")

    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    after = int(_sql("SELECT count(*) FROM state_groups_state"))
    assert (result["rows_before"], result["rows_after"]) == (before, after)
    assert after < before
    history = _client_api("GET", f"/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=1000", token)["chunk"]
    assert len([event for event in history if event["type"] == "org.example.device"]) == DEVICES + CHANGES
    state = _client_api("GET", f"/_matrix/client/v3/rooms/{room}/state", token)
    devices = {event["state_key"]: event["content"]["volume"] for event in state if event["type"] == "org.example.device"}
    assert devices == {"d0": CHANGES, **{f"d{device}": 0 for device in range(1, DEVICES)}}
    record_figure("compression", "state_groups_state_rows_before", before)
    record_figure("compression", "state_groups_state_rows_after", after)
    record_figure("compression", "duration", result["duration_seconds"])
    record_figure("compression", "room_grown_in", grow_seconds, f"{DEVICES + CHANGES} state events")


def test_restoring_mysql_alone_keeps_synapse_running_and_a_message_written_after_the_backup(
    stack: list[AppliedStack], archive_dir: Path
) -> None:
    _mysql(f"CREATE TABLE devices (id INT PRIMARY KEY, name VARCHAR(64)) CHARACTER SET utf8mb4; INSERT INTO devices VALUES (1, '{ROW}')")
    backup = _in("backup", "backup-now")
    assert backup.exit_code == 0, backup.stderr
    archive = json.loads(backup.stdout.splitlines()[-1])["archive"]
    # After the backup: a conversation in Synapse, and MySQL loses its rows.
    later = converse(BASE_URL, stack[-1].outputs["synapse_registration_token"])
    _mysql("DELETE FROM devices")
    synapse_since = _started_at("synapse")

    started = time.monotonic()
    restored = subprocess.run(
        ["bash", "scripts/restore.sh", "test", archive, "--only", "mysql"], cwd=ROOT, capture_output=True, text=True,
        timeout=900, check=False, env={**os.environ, "PREFIX": PREFIX},
    )
    restore_seconds = time.monotonic() - started

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _mysql("SELECT name FROM devices") == ROW
    assert later.text in read_messages(BASE_URL, later.sender, later.password, later.room_id)
    assert _started_at("synapse") == synapse_since, "Synapse was restarted by a MySQL-only restore"
    assert "stopping e2e-maint-synapse" not in restored.stdout
    record_figure("restore", "mysql_only", restore_seconds)
