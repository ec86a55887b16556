"""The restore drill: back up a live `test` stack, lose every volume and archive, redeploy, restore from the offsite copy, find it all again.

What the VoiceGrow guide's §9.2.3 "disaster recovery" describes, done for real on a Docker engine:
a Matrix conversation, a MySQL row and a bucket object are written; a backup is taken while every
service keeps running, and copied offsite, encrypted; the stack's containers and volumes are
destroyed, and the local archive too (the offsite copy survives, in a directory under
`backup.host_path` through rclone's local backend); the stack is deployed again on empty volumes
(with its Pulumi state, as `pulumi up` would: the same offsite keys); `scripts/restore.sh
--offsite` fetches, decrypts and checks the archive and brings the data back. Synapse must come back
with its own signing key. The times are compared with the guide's recovery time targets (§9.1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import AppliedStack, apply_program, connect_engine
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.matrix_client import converse, read_messages
from tests.e2e.stacks import MYSQL, PROBE_IMAGE, ROOT, host_ports, local_overrides, record_figure

pytestmark = pytest.mark.e2e

PREFIX = "e2e-drill"
PORT = host_ports(18600)
BASE_URL = f"http://127.0.0.1:{PORT}"
IMAGES = ("postgres", "synapse", "mysql", "redis", "minio", "probe")
# VoiceGrow guide §9.1: recovery time targets for a MySQL and a MinIO failure.
TARGETS = {"MySQL": 600, "MinIO": 600}
ROW = "drill row 你好"
OBJECT_KEY = "drill/greeting.txt"
OBJECT_BODY = "an object in the bucket, before the disaster\n"
# Enough data for the times to mean something: 10 000 rows of 200 bytes, 20 incompressible 1 MB objects.
BULK_ROWS = 10_000
BULK_OBJECTS = 20
OFFSITE_REMOTE = "offsite:/backups/offsite"
SECRETS = {"backup_rclone_config": "[offsite]\ntype = local\n"}


def _docker(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=600, check=False)


def _exec(container: str, script: str, environment: dict[str, str] | None = None) -> str:
    """A shell script in a container; its credentials come from the container's own environment."""
    result = run_in(docker.from_env().containers.get(f"{PREFIX}-{container}"), ["sh", "-c", script], environment=environment, apart=True)
    assert result.exit_code == 0, f"{container}: {script}\n{result.output}"
    return result.stdout


# MinIO's client reads its root credentials from the service's secret files.
MC = 'MC_HOST_local="http://$(cat /run/secrets/root_user):$(cat /run/secrets/root_password)@127.0.0.1:9000" mc'


def _write_row() -> None:
    _exec("voicegrow-mysql", f"{MYSQL} \"CREATE TABLE drill (id INT PRIMARY KEY, note VARCHAR(64)) CHARACTER SET utf8mb4; INSERT INTO drill VALUES (1, '{ROW}')\"")


def _read_rows() -> str:
    return _exec("voicegrow-mysql", f"{MYSQL} \"SELECT note FROM drill\" 2>&1 || true").strip()


def _write_bulk() -> None:
    digits = ", ".join(f"({digit})" for digit in range(10))
    _exec(
        "voicegrow-mysql",
        f"{MYSQL} \"CREATE TABLE digits (d INT); INSERT INTO digits VALUES {digits}; "
        "CREATE TABLE bulk (id INT PRIMARY KEY, body VARCHAR(255)); "
        "INSERT INTO bulk SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d, REPEAT(MD5(a.d + 10 * b.d + 100 * c.d + 1000 * e.d), 6) "
        "FROM digits a, digits b, digits c, digits e\"",
    )
    _exec(
        "voicegrow-minio",
        f"head -c 1048576 /dev/urandom > /tmp/bulk && for i in $(seq {BULK_OBJECTS}); do {MC} cp /tmp/bulk local/voicegrow/bulk/$i >/dev/null; done",
    )


def _count_bulk() -> tuple[int, int]:
    rows = _exec("voicegrow-mysql", f"{MYSQL} \"SELECT COUNT(*) FROM bulk\" 2>/dev/null || echo 0").strip()
    objects = _exec("voicegrow-minio", f"{MC} ls local/voicegrow/bulk/ | wc -l").strip()
    return int(rows), int(objects)


def _put_object() -> None:
    _exec("voicegrow-minio", f"printf '%s' \"$OBJECT_BODY\" > /tmp/object && {MC} cp /tmp/object local/voicegrow/{OBJECT_KEY}", {"OBJECT_BODY": OBJECT_BODY})


def _read_object() -> str:
    return _exec("voicegrow-minio", f"{MC} cat local/voicegrow/{OBJECT_KEY} 2>&1 || true")


def _signing_key_ids() -> list[str]:
    with urllib.request.urlopen(f"{BASE_URL}/_matrix/key/v2/server", timeout=10) as response:
        return sorted(json.loads(response.read())["verify_keys"])


def _started_at(container: str) -> str:
    return _docker("inspect", "-f", "{{.State.StartedAt}}", f"{PREFIX}-{container}").stdout.strip()


@pytest.fixture(scope="module")
def archive_dir() -> Iterator[Path]:
    """The host directory the archives go to: it outlives the stack's volumes."""
    path = Path(tempfile.mkdtemp(prefix="e2e-drill-archives-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def images() -> None:
    require_engine()
    result = subprocess.run(["bash", str(ROOT / "tests" / "e2e" / "images" / "build.sh"), *IMAGES], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"the stand-in images could not be built: {result.stderr.strip()[-500:]}")


@pytest.fixture(scope="module")
def overrides(archive_dir: Path) -> dict:
    return local_overrides(
        PREFIX,
        PORT,
        {
            "proxy": {"enabled": False},
            # The stack allows one registration per ~10 minutes per address; the drill registers two users.
            "synapse": {"extra_config": {"rc_registration": {"per_second": 1, "burst_count": 10}}},
            "voicegrow": {"server_image": PROBE_IMAGE},
            # The offsite copy goes to a directory beside the archives (rclone's local backend),
            # encrypted; the drill restores from it after the local archives are gone too.
            "backup": {"enabled": True, "host_path": str(archive_dir), "offsite": {"enabled": True, "remote": OFFSITE_REMOTE}},
        },
    )


@pytest.fixture(scope="module")
def deployed(images: None, overrides: dict) -> Iterator[list[AppliedStack]]:
    """The stacks the drill deploys (the first, then the one after the disaster); all destroyed at the end."""
    stacks = [apply_program(ROOT, "test", overrides, secrets=SECRETS)]
    try:
        yield stacks
    finally:
        for stack in reversed(stacks):
            stack.destroy()


def test_restore_drill_brings_back_message_row_object_and_signing_key(deployed: list[AppliedStack], overrides: dict, archive_dir: Path) -> None:
    first = deployed[0]
    assert first.outputs["backup_location"] == str(archive_dir)
    restore_command = first.outputs["backup_restore_command"]
    assert restore_command == f"PREFIX={PREFIX} scripts/restore.sh test latest"

    # Data a user, the VoiceGrow server and its object store would have written.
    conversation = converse(BASE_URL, first.outputs["synapse_registration_token"])
    _write_row()
    _put_object()
    _write_bulk()
    assert _count_bulk() == (BULK_ROWS, BULK_OBJECTS)
    key_ids = _signing_key_ids()
    running_since = {name: _started_at(name) for name in ("synapse", "synapse-postgres", "voicegrow-mysql", "voicegrow-minio")}

    # Back up now, online.
    started = time.monotonic()
    backup = run_in(docker.from_env().containers.get(f"{PREFIX}-backup"), ["backup-now"], apart=True)
    backup_seconds = time.monotonic() - started
    assert backup.exit_code == 0, backup.stderr
    archive = json.loads(backup.stdout.splitlines()[-1])
    assert {name: _started_at(name) for name in running_since} == running_since, "a service was restarted by the backup"
    assert (archive_dir / archive["archive"]).stat().st_mode & 0o077 == 0

    # A failed run is visible: non-zero exit, the container's log says so, the archive stays.
    _docker("stop", f"{PREFIX}-voicegrow-minio")
    started = time.monotonic()
    failed = _docker("exec", f"{PREFIX}-backup", "backup-now")
    failed_seconds = time.monotonic() - started
    _docker("start", f"{PREFIX}-voicegrow-minio")
    assert failed.returncode != 0
    assert "backup FAILED" in _docker("logs", f"{PREFIX}-backup").stderr + _docker("logs", f"{PREFIX}-backup").stdout
    assert sorted(path.name for path in archive_dir.glob("backup-*.tar")) == [archive["archive"]]

    # The disaster: every container and volume of the stack is gone; the archives are not.
    first.destroy(keep_volumes=False)
    engine = connect_engine()
    try:
        left = [volume.name for volume in engine.volumes.list() if volume.name.startswith(f"{PREFIX}-")]
    finally:
        engine.close()
    assert left == []
    assert (archive_dir / archive["archive"]).is_file()
    # The host's archives are lost as well; the offsite copy, encrypted, is all there is.
    (archive_dir / archive["archive"]).unlink()
    [copy] = [path for path in (archive_dir / "offsite" / "selfhosted-test").rglob("*") if path.is_file()]
    assert "backup" not in copy.name and copy.read_bytes()[257:262] != b"ustar", "the offsite copy is not encrypted"

    # Deploy again on empty volumes, with the stack's state (its passwords), as `pulumi up` would.
    started = time.monotonic()
    second = apply_program(ROOT, "test", overrides, secrets=SECRETS, state=first.state)
    redeploy_seconds = time.monotonic() - started
    deployed.append(second)
    assert _signing_key_ids() != key_ids, "a fresh Synapse should have made a new signing key"
    assert ROW not in _read_rows()
    assert _count_bulk() == (0, 0)

    # The documented restore command, from the offsite copy (decrypted with the keys the stack's
    # state kept).
    started = time.monotonic()
    restored = subprocess.run(
        ["bash", "-c", f"{restore_command} --offsite"], cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False,
        env={**os.environ, "RESTORE_TIMEOUT": "600"},
    )
    restore_seconds = time.monotonic() - started
    assert restored.returncode == 0, restored.stdout + restored.stderr

    assert conversation.text in read_messages(BASE_URL, conversation.sender, conversation.password, conversation.room_id)
    assert _read_rows() == ROW
    assert _read_object() == OBJECT_BODY
    assert _count_bulk() == (BULK_ROWS, BULK_OBJECTS)
    assert _signing_key_ids() == key_ids

    size_mb = archive["size_bytes"] / 1e6
    record_figure("backup", "duration", backup_seconds)
    record_figure("backup", "failure_reported", failed_seconds, "MinIO stopped")
    record_figure("restore", "duration", restore_seconds)
    record_figure("restore", "redeploy", redeploy_seconds)
    record_figure("size", "archive", size_mb)
    print("\n" + "\n".join(line for line in backup.stderr.splitlines() if " MB in " in line))
    print("\n".join(line for line in (restored.stdout + restored.stderr).splitlines() if "restored" in line or "healthy" in line))
    print(f"backup {backup_seconds:.1f} s (online), archive {size_mb:.2f} MB")
    print(f"restore {restore_seconds:.1f} s (stop, restore, start, healthy); redeploy on empty volumes {redeploy_seconds:.1f} s")
    for service, target in TARGETS.items():
        total = redeploy_seconds + restore_seconds
        verdict = "within" if total <= target else "OVER"
        print(f"{service}: redeploy + restore {total:.0f} s, {verdict} the guide's §9.1 target of {target // 60} min")
