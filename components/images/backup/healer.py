"""Restart the stack's containers that stay unhealthy.

Docker's restart policy restarts a container whose process exits, never one whose process runs
but fails its health check (a hung process). Docker marks a container unhealthy only after its
check failed `retries` times in a row, past its start period: that is how long the check allows.
The healer asks the engine every interval for this stack's unhealthy containers and restarts
each one, which stops it with its own stop timeout (a graceful stop first) and starts it again.

It backs off, so that a service that recovers slowly (a long migration, crash recovery) is not
killed again and again: a container is left alone while its checks still allow it to start (its
start period plus `retries` intervals since it started); after a restart, the next one waits
twice as long as the one before (HEALER_BACKOFF_SECONDS, then doubling); and after
HEALER_MAX_RESTARTS restarts within HEALER_WINDOW_SECONDS it gives up on that container, says so,
and reports itself unhealthy (`healer.py check`) until that container is healthy again.

After each look it writes its state for Prometheus (node exporter's textfile collector reads the
file; the healer itself has no network): the containers it gave up on, its restarts of each, and
when it last looked. The HealerGaveUp and HealerStopped alerts read them.

It talks to the Docker engine over its Unix socket with the standard library only, and is
configured by the environment:
    HEALER_LABEL     label=value every container of the stack carries
    HEALER_PREFIX    prefix of the stack's container names (other stacks may share the label)
    HEALER_EXCLUDE   names of containers never restarted, comma-separated (default none)
    HEALER_INTERVAL  seconds between two looks (default 10)
    HEALER_BACKOFF_SECONDS, HEALER_MAX_RESTARTS, HEALER_WINDOW_SECONDS   (default 60, 5, 3600)
    HEALER_METRICS_FILE  where to write the metrics (default: not written)
    DOCKER_SOCKET    the engine's socket (default /var/run/docker.sock)

    healer.py run     the loop (the container's main process)
    healer.py check   exit 0 when the engine answers (the container's health check)
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REQUEST_SECONDS = 30
# A restart waits for the container's stop timeout (up to 120 s for MySQL) before it answers.
RESTART_SECONDS = 300
# Where `run` lists the containers it gave up on, for `check` (a tmpfs of the container's own).
GIVEN_UP_FILE = Path("/tmp/healer-given-up")
NANOSECONDS = 1_000_000_000


class EngineError(RuntimeError):
    """The engine refused a request or could not be reached."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


@dataclass(frozen=True)
class Engine:
    """The few Docker Engine API calls the healer makes."""

    socket_path: str

    def request(self, method: str, path: str, timeout: float = REQUEST_SECONDS) -> Any:
        connection = _UnixConnection(self.socket_path, timeout)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        except OSError as exc:
            raise EngineError(f"{method} {path}: {exc}") from None
        finally:
            connection.close()
        if response.status >= 300:
            raise EngineError(f"{method} {path}: {response.status} {body.decode(errors='replace').strip()}")
        return json.loads(body) if body and response.getheader("Content-Type", "").startswith("application/json") else None

    def unhealthy(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label], "health": ["unhealthy"]})
        return self.request("GET", "/containers/json?filters=" + urllib.parse.quote(filters))

    def inspect(self, container_id: str) -> dict[str, Any]:
        return self.request("GET", f"/containers/{container_id}/json")

    def restart(self, container_id: str) -> None:
        # Without `t`, the engine stops the container with the container's own stop timeout.
        self.request("POST", f"/containers/{container_id}/restart", timeout=RESTART_SECONDS)


def to_restart(containers: list[dict[str, Any]], prefix: str, excluded: frozenset[str]) -> list[tuple[str, str]]:
    """(id, name) of the unhealthy containers that belong to this stack, by name prefix, less the excluded."""
    chosen = []
    for container in containers:
        names = [name.lstrip("/") for name in container.get("Names", [])]
        name = next((name for name in names if name.startswith(prefix + "-")), None)
        if name is not None and name not in excluded:
            chosen.append((container["Id"], name))
    return chosen


def starting_grace_seconds(inspect: dict[str, Any]) -> float:
    """How long after a start Docker's checks allow the container to become healthy: its start
    period plus `retries` intervals (Docker's defaults where the check leaves them unset)."""
    check = inspect.get("Config", {}).get("Healthcheck") or {}
    interval = (check.get("Interval") or 30 * NANOSECONDS) / NANOSECONDS
    return (check.get("StartPeriod") or 0) / NANOSECONDS + (check.get("Retries") or 3) * interval


def started_at(inspect: dict[str, Any]) -> float:
    """The container's last start, in seconds since the epoch (Docker's RFC 3339, nanoseconds cut to micro)."""
    text = inspect["State"]["StartedAt"]
    stamp, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{stamp}.{(fraction or '0')[:6]}+00:00").timestamp()


@dataclass
class Backoff:
    """Which unhealthy container may be restarted now, and which the healer has given up on."""

    base_seconds: float
    max_restarts: int
    window_seconds: float
    restarts: dict[str, list[float]] = field(default_factory=dict)
    """Container id -> when the healer restarted it, within the window."""
    given_up: dict[str, str] = field(default_factory=dict)
    """Container id -> name, of those restarted max_restarts times within the window."""

    def decide(self, container_id: str, inspect: dict[str, Any], now: float) -> str | None:
        """None to restart now; otherwise why not."""
        if container_id in self.given_up:
            return "given up"
        grace = starting_grace_seconds(inspect)
        if now - started_at(inspect) < grace:
            return f"started {now - started_at(inspect):.0f} s ago, its checks allow {grace:.0f} s"
        recent = [time_ for time_ in self.restarts.get(container_id, []) if now - time_ < self.window_seconds]
        self.restarts[container_id] = recent
        if len(recent) >= self.max_restarts:
            self.given_up[container_id] = inspect["Name"].lstrip("/")
            return f"restarted {len(recent)} times in {self.window_seconds:.0f} s: giving up, it needs a person"
        wait = self.base_seconds * 2 ** (len(recent) - 1) if recent else 0.0
        if recent and now - recent[-1] < wait:
            return f"restarted {now - recent[-1]:.0f} s ago, waiting {wait:.0f} s before the next restart"
        return None

    def restarted(self, container_id: str, now: float) -> None:
        self.restarts.setdefault(container_id, []).append(now)

    def healthy_again(self, unhealthy_ids: set[str]) -> None:
        """Forget the containers that are no longer unhealthy: a later failure starts afresh."""
        for container_id in [known for known in self.given_up if known not in unhealthy_ids]:
            del self.given_up[container_id]


def heal_once(engine: Engine, label: str, prefix: str, excluded: frozenset[str], backoff: Backoff) -> list[str]:
    """Restart the stack's unhealthy containers that the backoff allows; the names restarted."""
    restarted = []
    chosen = to_restart(engine.unhealthy(label), prefix, excluded)
    backoff.healthy_again({container_id for container_id, _ in chosen})
    for container_id, name in chosen:
        reason = backoff.decide(container_id, engine.inspect(container_id), time.time())
        if reason == "given up":
            continue
        if reason is not None:
            print(f"healer: {name} is unhealthy, not restarted: {reason}", flush=True)
            continue
        print(f"healer: {name} is unhealthy: restarting it", flush=True)
        started = time.monotonic()
        backoff.restarted(container_id, time.time())
        try:
            engine.restart(container_id)
        except EngineError as exc:
            print(f"healer: restarting {name} failed: {exc}", flush=True)
            continue
        print(f"healer: {name} restarted in {time.monotonic() - started:.1f} s", flush=True)
        restarted.append(name)
    return restarted


def metrics_text(given_up: list[str], restarts: dict[str, int], now: float) -> str:
    """The healer's state in Prometheus's text format: names of the containers it gave up on and
    of those it restarted (with how often since it started), and when it last looked. Docker's
    container names need no escaping in a label value."""
    lines = [
        "# HELP healer_last_run_timestamp_seconds When the healer last looked at the containers.",
        "# TYPE healer_last_run_timestamp_seconds gauge",
        f"healer_last_run_timestamp_seconds {now:.17g}",
        "# HELP healer_gave_up 1 for each container the healer stopped restarting: it needs a person.",
        "# TYPE healer_gave_up gauge",
        *[f'healer_gave_up{{container="{name}"}} 1' for name in sorted(given_up)],
        "# HELP healer_restarts_total Restarts of each container by the healer since it started.",
        "# TYPE healer_restarts_total counter",
        *[f'healer_restarts_total{{container="{name}"}} {count}' for name, count in sorted(restarts.items())],
    ]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace the file at once, readable by the collector's unprivileged user: it never reads half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.chmod(0o644)
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    engine = Engine(os.environ.get("DOCKER_SOCKET", "/var/run/docker.sock"))
    if argv == ["check"]:
        try:
            engine.request("GET", "/_ping", timeout=5)
        except EngineError as exc:
            print(f"healer: the engine does not answer: {exc}", file=sys.stderr)
            return 1
        given_up = GIVEN_UP_FILE.read_text().strip() if GIVEN_UP_FILE.exists() else ""
        if given_up:
            print(f"healer: gave up restarting {given_up}: it stays unhealthy", file=sys.stderr)
            return 1
        return 0
    if argv != ["run"]:
        print("usage: healer.py run|check", file=sys.stderr)
        return 2
    label, prefix = os.environ["HEALER_LABEL"], os.environ["HEALER_PREFIX"]
    excluded = frozenset(name for name in os.environ.get("HEALER_EXCLUDE", "").split(",") if name)
    interval = int(os.environ.get("HEALER_INTERVAL", "10"))
    backoff = Backoff(
        base_seconds=float(os.environ.get("HEALER_BACKOFF_SECONDS", "60")),
        max_restarts=int(os.environ.get("HEALER_MAX_RESTARTS", "5")),
        window_seconds=float(os.environ.get("HEALER_WINDOW_SECONDS", "3600")),
    )
    # PID 1 gets no default action for SIGTERM: without a handler, every stop would end in SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    metrics_file = os.environ.get("HEALER_METRICS_FILE")
    restarts: dict[str, int] = {}
    print(f"healer: restarting unhealthy containers named {prefix}-* labelled {label}, looking every {interval} s", flush=True)
    while True:
        try:
            for name in heal_once(engine, label, prefix, excluded, backoff):
                restarts[name] = restarts.get(name, 0) + 1
        except EngineError as exc:
            print(f"healer: {exc}", flush=True)
        GIVEN_UP_FILE.write_text(", ".join(sorted(backoff.given_up.values())))
        if metrics_file:
            write_atomically(Path(metrics_file), metrics_text(list(backoff.given_up.values()), restarts, time.time()))
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
