"""Restart the stack's containers that stay unhealthy.

Docker's restart policy restarts a container whose process exits, never one whose process runs
but fails its health check (a hung process). Docker marks a container unhealthy only after its
check failed `retries` times in a row, past its start period: that is how long the check allows.
The healer asks the engine every interval for this stack's unhealthy containers and restarts
each one, which stops it with its own stop timeout (a graceful stop first) and starts it again.

It talks to the Docker engine over its Unix socket with the standard library only, and is
configured by the environment:
    HEALER_LABEL     label=value every container of the stack carries
    HEALER_PREFIX    prefix of the stack's container names (other stacks may share the label)
    HEALER_EXCLUDE   names of containers never restarted, comma-separated (default none)
    HEALER_INTERVAL  seconds between two looks (default 10)
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
from dataclasses import dataclass
from typing import Any

REQUEST_SECONDS = 30
# A restart waits for the container's stop timeout (up to 120 s for MySQL) before it answers.
RESTART_SECONDS = 300


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


def heal_once(engine: Engine, label: str, prefix: str, excluded: frozenset[str]) -> list[str]:
    """Restart every unhealthy container of the stack; the names restarted."""
    restarted = []
    for container_id, name in to_restart(engine.unhealthy(label), prefix, excluded):
        print(f"healer: {name} is unhealthy: restarting it", flush=True)
        started = time.monotonic()
        try:
            engine.restart(container_id)
        except EngineError as exc:
            print(f"healer: restarting {name} failed: {exc}", flush=True)
            continue
        print(f"healer: {name} restarted in {time.monotonic() - started:.1f} s", flush=True)
        restarted.append(name)
    return restarted


def main(argv: list[str]) -> int:
    engine = Engine(os.environ.get("DOCKER_SOCKET", "/var/run/docker.sock"))
    if argv == ["check"]:
        try:
            engine.request("GET", "/_ping", timeout=5)
        except EngineError as exc:
            print(f"healer: the engine does not answer: {exc}", file=sys.stderr)
            return 1
        return 0
    if argv != ["run"]:
        print("usage: healer.py run|check", file=sys.stderr)
        return 2
    label, prefix = os.environ["HEALER_LABEL"], os.environ["HEALER_PREFIX"]
    excluded = frozenset(name for name in os.environ.get("HEALER_EXCLUDE", "").split(",") if name)
    interval = int(os.environ.get("HEALER_INTERVAL", "10"))
    # PID 1 gets no default action for SIGTERM: without a handler, every stop would end in SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"healer: restarting unhealthy containers named {prefix}-* labelled {label}, looking every {interval} s", flush=True)
    while True:
        try:
            heal_once(engine, label, prefix, excluded)
        except EngineError as exc:
            print(f"healer: {exc}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
