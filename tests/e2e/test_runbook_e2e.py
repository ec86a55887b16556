"""The runbook (docs/runbook.md), run as written against a deployed `test` stack.

Every ```bash block between the runbook's markers runs in order in one shell, as an operator
would paste them, after the first block is given this stack's values. `pulumi` is a stand-in
(the CLI cannot be installed here): `stack output` answers from the deployed stack's outputs,
`config set` is recorded, and `up` waits while the test deploys the recorded change with the
harness, as `pulumi up` would. Then the effects are checked: the user the runbook created logs
in with the password it reset, Synapse reads the rotated secret, an archive was taken and a
part restored.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import AppliedStack, apply_program
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.stacks import PROBE_IMAGE, ROOT, host_ports, local_overrides, record_figure
from tests.runbook import ENGLISH, command_blocks, with_stack

pytestmark = pytest.mark.e2e

PREFIX = "e2e-runbook"
PORT = host_ports(19000)
SYNAPSE = f"http://127.0.0.1:{PORT}"
IMAGES = ("postgres", "synapse", "mysql", "redis", "minio", "probe", "prometheus", "alertmanager", "node-exporter", "blackbox-exporter")
# The stand-in `pulumi`: outputs from a JSON file, `config set` and `up` recorded; `up` waits for the test.
PULUMI = """#!/usr/bin/env bash
set -euo pipefail
dir="$RUNBOOK_PULUMI_DIR"
case "${1:-} ${2:-}" in
  "stack output") python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$dir/outputs.json" "$3" ;;
  "config set") python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${@:3}" >>"$dir/config-set" ;;
  "up --yes")
    touch "$dir/up-requested"
    while [[ ! -e "$dir/up-done" ]]; do sleep 1; done
    rm -f "$dir/up-requested" "$dir/up-done"
    ;;
  *) echo "pulumi stand-in: unexpected command: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def archive_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="e2e-runbook-archives-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def stacks(archive_dir: Path) -> Iterator[list[AppliedStack]]:
    """The deployed stack and its updates, the newest last; all destroyed at the end."""
    require_engine()
    built = subprocess.run(["bash", str(ROOT / "tests" / "e2e" / "images" / "build.sh"), *IMAGES], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.skip(f"the stand-in images could not be built: {built.stderr.strip()[-500:]}")
    overrides = local_overrides(
        PREFIX,
        PORT,
        {
            "proxy": {"enabled": False},
            "voicegrow": {"server_image": PROBE_IMAGE},
            "backup": {"enabled": True, "host_path": str(archive_dir)},
        },
    )
    deployed = [apply_program(ROOT, "test", overrides)]
    try:
        yield deployed
    finally:
        deployed[0].destroy()


def _pulumi_up(stacks: list[AppliedStack], pulumi_dir: Path) -> dict[str, str]:
    """What `pulumi up` does with the recorded `config set --secret` calls; the secrets it set."""
    changed = {}
    for line in (pulumi_dir / "config-set").read_text().splitlines():
        arguments = json.loads(line)
        assert arguments[0] == "--secret", f"only secrets are set in the runbook, got {arguments}"
        changed[arguments[1]] = arguments[2]
    current = stacks[-1]
    current.secrets = {**(current.secrets or {}), **changed}
    stacks.append(current.update())
    (pulumi_dir / "outputs.json").write_text(json.dumps(stacks[-1].outputs))
    return changed


def _login(user: str, password: str) -> int:
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
    request = urllib.request.Request(f"{SYNAPSE}/_matrix/client/v3/login", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_runbook_command_runs_and_does_what_it_says(
    stacks: list[AppliedStack], archive_dir: Path, tmp_path: Path, engine: docker.DockerClient
) -> None:
    first = stacks[0]
    blocks = with_stack(command_blocks(ENGLISH), {
        "STACK": "test", "PREFIX": PREFIX, "SYNAPSE": SYNAPSE, "SERVER_NAME": "test.matrix.example.com", "ADMIN": "admin",
    })
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    (tmp_path / "outputs.json").write_text(json.dumps(first.outputs))
    script = "\n".join(f"echo {shlex.quote(f'== runbook block {index}')}\n{block}" for index, block in enumerate(blocks, 1))

    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RUNBOOK_PULUMI_DIR": str(tmp_path)},
    )
    rotated: dict[str, str] = {}
    while process.poll() is None and time.monotonic() - started < 1200:
        if (tmp_path / "up-requested").exists() and not (tmp_path / "up-done").exists():
            rotated = _pulumi_up(stacks, tmp_path)
            (tmp_path / "up-done").touch()
        time.sleep(0.5)
    output = process.communicate(timeout=60)[0]
    record_figure("runbook", "every_command", time.monotonic() - started)

    assert process.returncode == 0, output[-4000:]
    assert f"== runbook block {len(blocks)}" in output
    assert '"server_version"' in output
    assert _login("alice", "a new long password") == 200
    assert _login("alice", "a long first password") == 403
    secret = run_in(engine.containers.get(f"{PREFIX}-synapse"), ["cat", "/config/registration_shared_secret"])
    assert secret.exit_code == 0 and secret.output == rotated["synapse_registration_shared_secret"]
    # The runbook's backup, the one the deploy of the rotated secret took before it replaced
    # Synapse, and the one the runbook's restore took of what it replaced.
    archives = sorted(path.name for path in archive_dir.glob("backup-*.tar"))
    assert len(archives) == 3, archives
    assert [len([name for name in archives if name.endswith(f"-{taken}.tar")]) for taken in ("before-change", "before-restore")] == [1, 1]
    assert "restore: restored" in output


def _status_check() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/status.sh", "test", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PREFIX": PREFIX},
    )


def test_the_status_check_passes_then_names_each_failing_service(stacks: list[AppliedStack], engine: docker.DockerClient) -> None:
    """`scripts/status.sh <stack> --check` (the guide's healthcheck.sh, §7.2.1), as cron runs it;
    monitoring probes the WebSocket port too."""
    prometheus = engine.containers.get(f"{PREFIX}-monitoring-prometheus")
    query = "http://127.0.0.1:9090/api/v1/query?query=probe_success%7Bservice%3D%22voicegrow-websocket%22%7D"
    deadline = time.monotonic() + 90
    while True:
        answer = run_in(prometheus, ["wget", "-q", "-O", "-", query])
        results = json.loads(answer.stdout)["data"]["result"] if answer.exit_code == 0 else []
        if [result["value"][1] for result in results] == ["1"]:
            break
        assert time.monotonic() < deadline, f"the WebSocket port's probe did not succeed: {answer.stdout}"
        time.sleep(2)

    healthy = _status_check()
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    lines = healthy.stdout.splitlines()
    for expected in (
        f"ok      {PREFIX}-voicegrow-redis",
        f"ok      {PREFIX}-synapse-postgres",
        "ok      Synapse client API",
        "ok      voicegrow-server-1 HTTP",
        "ok      voicegrow-server-1 WebSocket (4399)",
        "ok      last backup",
        "ok      critical alerts",
    ):
        assert any(line.startswith(expected) for line in lines), f"{expected!r} not in:\n{healthy.stdout}"

    redis = engine.containers.get(f"{PREFIX}-voicegrow-redis")
    redis.stop()
    try:
        broken = _status_check()
    finally:
        redis.start()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    failed = [line for line in broken.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith(f"FAILED  {PREFIX}-voicegrow-redis: exited"), broken.stdout
    deadline = time.monotonic() + 120
    while engine.api.inspect_container(redis.id)["State"].get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, "Redis did not become healthy again"
        time.sleep(1)

    # A critical alert firing, as Prometheus would send it, for a minute.
    ends = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    added = run_in(engine.containers.get(f"{PREFIX}-monitoring-alertmanager"), [
        "amtool", "alert", "add", "StatusCheckTest", "severity=critical", f"--end={ends}", "--alertmanager.url=http://127.0.0.1:9093",
    ])
    assert added.exit_code == 0, added.stdout
    alerted = _status_check()
    assert alerted.returncode == 1, alerted.stdout + alerted.stderr
    failed = [line for line in alerted.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED  critical alerts: firing: StatusCheckTest"], alerted.stdout
