"""Commands run in a container as `docker exec` runs them, with their output read back from a file.

Once an exec's process has exited, dockerd waits at most 2 seconds for its output to be copied to
the client and then closes the stream with whatever it has (moby, daemon/monitor.go, the exec's
exit event): on a busy engine an exec's output came back empty with exit code 0. So the output
goes to files in the container's /dev/shm (every container has one, writable by any user, also
with a read-only root filesystem) and is read from the host through /proc/<pid>/root: the tests
run as root on the engine's host.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container gave: its exit code and its output."""

    exit_code: int
    stdout: str
    """Standard output, with standard error when the two were not asked apart."""
    stderr: str
    """Standard error when asked apart, else empty."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_in(
    container: Any,
    argv: Sequence[str],
    *,
    user: str = "",
    environment: Mapping[str, str] | None = None,
    apart: bool = False,
) -> ExecResult:
    """Run `argv` in the running `container` (a docker SDK container) as `docker exec` does: as
    `user` (default: the container's), with `environment` added. With `apart`, standard output
    and standard error are kept apart."""
    files = f"/dev/shm/.e2e-exec-{uuid.uuid4().hex}"
    redirect = f">{files}.out 2>{files}.err" if apart else f">{files}.out 2>&1"
    started = container.exec_run(["sh", "-c", f'"$@" {redirect}', "sh", *argv], user=user, environment=dict(environment or {}))
    container.reload()
    root = Path(f"/proc/{container.attrs['State']['Pid']}/root")
    if not root.exists():
        raise PermissionError(f"cannot read {root}: the end-to-end tests run as root on the engine's host")
    output = root / f"{files.lstrip('/')}.out"
    if not output.exists():
        raise AssertionError(f"{argv!r} did not run in {container.name}: exit {started.exit_code}: {started.output.decode(errors='replace')}")
    stdout = output.read_bytes().decode(errors="replace")
    output.unlink()
    errors = root / f"{files.lstrip('/')}.err"
    stderr = errors.read_bytes().decode(errors="replace") if apart else ""
    errors.unlink(missing_ok=True)
    return ExecResult(started.exit_code, stdout, stderr)
