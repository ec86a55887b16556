"""The major-upgrade scripts run by sh against a recording stand-in for the docker CLI: what each
does for the same, a newer and an older PostgreSQL, and for a stack deployed for the first time."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.rendering.synapse import (
    PostgresUpgrade,
    render_postgres_upgrade_dump,
    render_postgres_upgrade_restore,
)

pytestmark = pytest.mark.rendered

UPGRADE = PostgresUpgrade(
    postgres="p-synapse-postgres",
    synapse=("p-synapse", "p-synapse-sync-1"),
    data_volume="p-synapse-postgres",
    upgrade_volume="p-synapse-postgres-upgrade",
    image="sha256:new",
    user="999:999",
)

# Answers as the engine would for a stack whose server (running or not) runs version `running`
# and whose new image is `wanted`; every call is recorded, one line each.
DOCKER = """#!/bin/sh
echo "$*" >>"$CALLS"
case "$*" in
  "container inspect -f {{.Image}} "*) echo sha256:old ;;
  "container inspect -f {{.State.Running}} "*) echo "$SERVING" ;;
  "container inspect -f {{.State.Health.Status}} "*) echo "$HEALTH" ;;
  "container inspect "*) [ "$EXISTS" = yes ] || exit 1 ;;
  *"cat /var/lib/postgresql/data/PG_VERSION") echo "$RUNNING" ;;
  "run --rm --network none --entrypoint postgres "*) echo "postgres (PostgreSQL) $WANTED.2 (Debian $WANTED.2-1)" ;;
  "exec p-synapse-postgres test -e "*) [ "$DUMP" = yes ] || exit 1 ;;
esac
"""


def _run(
    tmp_path: Path,
    script: str,
    running: str = "15",
    wanted: str = "17",
    exists: bool = True,
    serving: bool = True,
    dump: bool = False,
    health: str = "healthy",
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    docker = tmp_path / "docker"
    docker.write_text(DOCKER)
    docker.chmod(0o755)
    # Waiting costs no time here.
    sleep = tmp_path / "sleep"
    sleep.write_text("#!/bin/sh\n")
    sleep.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    environment = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "CALLS": str(calls),
        "RUNNING": running,
        "WANTED": wanted,
        "EXISTS": "yes" if exists else "no",
        "SERVING": "true" if serving else "false",
        "DUMP": "yes" if dump else "no",
        "HEALTH": health,
    }
    result = subprocess.run(["sh", "-c", script], env=environment, capture_output=True, text=True, timeout=30)
    return result, calls.read_text().splitlines()


def test_both_scripts_are_valid_posix_shell() -> None:
    for script in (render_postgres_upgrade_dump(UPGRADE), render_postgres_upgrade_restore(UPGRADE)):
        subprocess.run(["sh", "-n", "-c", script], check=True)


def test_a_version_the_engine_did_not_return_stops_the_upgrade_before_anything_changes(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_dump(UPGRADE), running="")
    assert result.returncode == 1
    assert "could not read p-synapse-postgres's PostgreSQL version" in result.stderr and "nothing was changed" in result.stderr
    assert not [call for call in calls if call.startswith(("stop", "exec p-synapse-postgres pg_dump"))]


def test_the_first_deploy_has_nothing_to_upgrade(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_dump(UPGRADE), exists=False)
    assert result.returncode == 0, result.stderr
    assert "nothing to upgrade" in result.stdout
    assert calls == ["container inspect p-synapse-postgres"]


def test_a_stopped_server_fails_the_deploy_with_how_to_start_it(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_dump(UPGRADE), serving=False)
    assert result.returncode == 1
    assert "p-synapse-postgres is not running: start it (docker start p-synapse-postgres)" in result.stderr
    assert not [call for call in calls if call.startswith(("stop", "exec"))]


def test_the_same_major_version_dumps_nothing_and_stops_nothing(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_dump(UPGRADE), running="17", wanted="17")
    assert result.returncode == 0, result.stderr
    assert "no major upgrade" in result.stdout
    assert not [call for call in calls if call.startswith(("stop", "exec p-synapse-postgres pg_dump"))]


def test_a_newer_major_version_stops_synapse_dumps_stops_the_server_and_sets_its_cluster_aside(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_dump(UPGRADE))
    assert result.returncode == 0, result.stderr
    stop_synapse = calls.index("stop p-synapse")
    assert calls.index("stop p-synapse-sync-1") > stop_synapse
    dump = calls.index("exec p-synapse-postgres pg_dump -U synapse -d synapse -Fc -f /var/lib/postgresql/upgrade/synapse.dump.partial")
    stop_server = calls.index("stop p-synapse-postgres")
    move = next(index for index, call in enumerate(calls) if call.startswith("run --rm --network none --user 999:999"))
    assert stop_synapse < dump < stop_server < move
    assert "-v p-synapse-postgres:/var/lib/postgresql/data -v p-synapse-postgres-upgrade:/var/lib/postgresql/upgrade" in calls[move]
    assert "cp -a /var/lib/postgresql/data/. /var/lib/postgresql/upgrade/postgres-15/" in calls[move]
    assert calls[move].index("cp -a") < calls[move].index("find /var/lib/postgresql/data -mindepth 1 -delete")


def test_an_older_major_version_is_refused_before_anything_stops(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_dump(UPGRADE), running="17", wanted="16")
    assert result.returncode == 1
    assert "PostgreSQL 16, older than the running 17" in result.stderr
    assert not [call for call in calls if call.startswith("stop")]


def test_the_restore_does_nothing_without_an_upgrade_dump(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_restore(UPGRADE), dump=False)
    assert result.returncode == 0, result.stderr
    assert "nothing to restore" in result.stdout
    assert not [call for call in calls if "pg_restore" in call or call.startswith("start")]


def test_the_restore_loads_the_dump_in_one_transaction_then_starts_synapse(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_restore(UPGRADE), dump=True)
    assert result.returncode == 0, result.stderr
    restore = next(index for index, call in enumerate(calls) if "pg_restore" in call)
    assert "--single-transaction --exit-on-error /var/lib/postgresql/upgrade/synapse.dump" in calls[restore]
    kept = calls.index("exec p-synapse-postgres mv /var/lib/postgresql/upgrade/synapse.dump /var/lib/postgresql/upgrade/synapse-restored.dump")
    assert restore < kept < calls.index("start p-synapse") < calls.index("start p-synapse-sync-1")


def test_the_restore_returns_once_synapse_and_its_workers_are_healthy(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, render_postgres_upgrade_restore(UPGRADE), dump=True)
    assert result.returncode == 0, result.stderr
    health = [call for call in calls if "{{.State.Health.Status}}" in call]
    assert [call.rsplit(" ", 1)[1] for call in health] == ["p-synapse", "p-synapse-sync-1"]
    assert calls.index("start p-synapse-sync-1") < calls.index(health[0])


def test_a_synapse_that_never_becomes_healthy_fails_the_deploy_naming_it(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, render_postgres_upgrade_restore(UPGRADE), dump=True, health="starting")
    assert result.returncode == 1
    assert "p-synapse is not healthy 300 s after the restore: see docker logs p-synapse" in result.stderr
