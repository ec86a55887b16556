"""Config overrides that point a stack at the locally built stand-in images and at free host ports.

The end-to-end tests select their images through the program's own settings (`images.*`,
`voicegrow.server_image`), exactly as an operator behind a restricted network would.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import docker

from config.merge import deep_merge
from tests.e2e.harness import AppliedStack, apply_program
from tests.e2e.harness.fixtures import require_engine

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / ".cache" / "e2e-figures.txt"

LOCAL_IMAGES = {
    "postgres": "e2e.local/postgres:16",
    "synapse": "e2e.local/synapse:v1.163.2",
    "nginx": "e2e.local/nginx:1.27",
    "engine_api": "e2e.local/nginx:1.27",
    "mysql": "e2e.local/mysql:8.0",
    "redis": "e2e.local/redis:7",
    "minio": "e2e.local/minio:stand-in",
    "prometheus": "e2e.local/prometheus:2.42",
    "alertmanager": "e2e.local/alertmanager:0.25",
    "node_exporter": "e2e.local/node-exporter:1.5",
    "blackbox_exporter": "e2e.local/blackbox-exporter:0.23",
}
NEXT_POSTGRES_IMAGE = "e2e.local/postgres:17"
"""PostgreSQL's next major version (17; LOCAL_IMAGES' runs 15), for the major upgrade."""
PROBE_IMAGE = "e2e.local/voicegrow-probe:1"
# MySQL's root client in the VoiceGrow MySQL container or task, with the password from its secret file.
MYSQL = 'MYSQL_PWD="$(cat /run/secrets/root_password)" mysql -uroot --default-character-set=utf8mb4 -N -B voicegrow -e'
BASE_IMAGE = "e2e.local/base:bookworm"
# E2E_PORT_OFFSET (scripts/test.sh sets one per clone) moves every module's host ports, so that
# the test runs of two clones on one machine do not take each other's ports.
PORT_OFFSET = int(os.environ.get("E2E_PORT_OFFSET", "0"))


# Every stack's scheduled jobs (backups, the media purge, the state compressor) at a time of day
# twelve hours from when the tests started, in UTC: the stacks' defaults (02:00 daily, hourly in
# prod, 04:30) would otherwise fire inside whichever test runs across them, and add an archive
# or a compression it does not expect. A test of a schedule sets its own. Fixed once per process,
# so that every `pulumi up` of a test declares the same schedule.
_QUIET = datetime.now(timezone.utc) + timedelta(hours=12)
QUIET_SCHEDULE = f"{_QUIET.minute} {_QUIET.hour} * * *"


def host_ports(base: int) -> int:
    """The first of the ten host ports a test module owns from `base`."""
    return base + PORT_OFFSET


TEST_CLIENT_RATE = {"rate": "600r/m", "burst": 500}
"""What the test clients, all from one address, may ask of login and registration at the proxy."""


def local_overrides(prefix: str, port_base: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Overrides giving a stack its own object names and host ports (`port_base` + 0..9)."""
    overrides: dict[str, Any] = {
        "prefix": prefix,
        "images": LOCAL_IMAGES,
        # Test clients register several users from one address within seconds; the profile's
        # limit (one per ten minutes, the guide's) would make them wait.
        "synapse": {
            "http_port": port_base,
            "wellknown_port": port_base + 1,
            "extra_config": {"rc_registration": {"per_second": 10, "burst_count": 50}},
            "remote_media_purge": {"schedule": QUIET_SCHEDULE},
            "state_compression": {"schedule": QUIET_SCHEDULE},
        },
        "backup": {"schedule": QUIET_SCHEDULE, "part_schedules": {"media": QUIET_SCHEDULE, "bucket": QUIET_SCHEDULE}},
        "voicegrow": {"ws_port": port_base + 2, "http_port": port_base + 4},
        "proxy": {
            "bind": "127.0.0.1",
            "http_port": port_base + 6,
            "https_port": port_base + 7,
            # The same clients, at the proxy: its per-address limits are tested on their own.
            "rate_limits": {"login": TEST_CLIENT_RATE, "registration": TEST_CLIENT_RATE},
        },
        # Full monitoring's Grafana, Loki, Alloy, cAdvisor and exporters have no stand-in images.
        "monitoring": {"level": "basic"},
    }
    engine = os.environ.get("DOCKER_HOST", "")
    if engine.startswith("unix://"):
        # The healer must hold the socket of the engine the stack runs on.
        overrides["healer"] = {"docker_socket": engine.removeprefix("unix://")}
    return deep_merge(overrides, extra or {})


def record_figure(kind: str, name: str, value: float, note: str = "") -> None:
    """Append one figure for the test run's summary (see tests/figures.py)."""
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a") as figures:
        figures.write(f"{kind} {name} {value:.2f} {note}".rstrip() + "\n")


@contextmanager
def deployed_stack(stack: str, overrides: dict[str, Any], figure: str, note: str = "") -> Iterator[AppliedStack]:
    """Apply a stack for a test module, record how long it took to become healthy, always destroy it."""
    require_engine()
    started = time.monotonic()
    applied = apply_program(ROOT, stack, overrides)
    try:
        record_figure("e2e", f"{figure}.apply_to_all_healthy", applied.seconds_to_ready, note)
        yield applied
    finally:
        applied.destroy()
        record_figure("e2e", f"{figure}.test_module", time.monotonic() - started)


def host_address_for_containers(engine: docker.DockerClient) -> str:
    """The host's address on the default bridge: containers reach the host there, whatever network they are on."""
    # Not the bridge network's IPAM config: on a new engine's first start it has no Gateway.
    # A running container's endpoint always has one.
    probe = engine.containers.run(BASE_IMAGE, ["sleep", "infinity"], detach=True)
    try:
        probe.reload()
        return probe.attrs["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
    finally:
        probe.remove(force=True)


def assert_second_up_changes_nothing(applied: AppliedStack, figure: str) -> None:
    """Fail, naming each resource and property, if `pulumi up` of the unchanged program would change anything."""
    started = time.monotonic()
    changes = applied.plan()
    record_figure("e2e", f"{figure}.second_up_plan", time.monotonic() - started)
    assert changes == [], "a second `pulumi up` would change:\n" + "\n".join(map(str, changes))


class ChangedStack:
    """A deployed stack and the changes made to it so far, each made by one more `pulumi up`."""

    def __init__(self, stack: AppliedStack, prefix: str, port_base: int, base: dict[str, Any]) -> None:
        self.stack = stack
        self.changes: dict[str, Any] = {}
        self._prefix, self._port_base, self._base = prefix, port_base, base

    def update(self, changes: dict[str, Any], secrets: dict[str, str] | None = None) -> AppliedStack:
        """`pulumi up` with these changes on top of the earlier ones (and these secrets, if given)."""
        changed = deep_merge(self.changes, changes)
        overrides = local_overrides(self._prefix, self._port_base, deep_merge(self._base, changed))
        self.stack = self.stack.update(overrides, secrets)
        self.changes = changed
        return self.stack


def wait_restarted_and_healthy(engine: docker.DockerClient, name: str, before: dict[str, Any], timeout: float) -> None:
    """Until the container `name` runs again (a new start after `before`, its earlier inspection)
    and a health check since that start passed.

    The health status alone can still read 'healthy' from before the restart for a moment.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = engine.api.inspect_container(name)["State"]
        started = state["StartedAt"]
        if state.get("Running") and started != before["State"]["StartedAt"]:
            # Both timestamps are RFC 3339 in UTC with the same precision, so text order is time order.
            checks = state.get("Health", {}).get("Log", [])
            if any(check["ExitCode"] == 0 and check["Start"][:26] > started[:26] for check in checks):
                return
        time.sleep(0.5)
    raise AssertionError(f"{name} was not restarted and healthy again within {timeout} s")


class RequestLoad:
    """Requests at a steady rate through the proxy's HTTP port to one host and path, counting the
    failed ones (an error, or a status other than 200), while the block runs."""

    def __init__(self, port: int, host: str, path: str, interval: float = 0.05) -> None:
        self.port, self.host, self.path, self.interval = port, host, path, interval
        self.sent = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sent += 1
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", self.path, headers={"Host": self.host})
                status = connection.getresponse().status
                connection.close()
                if status != 200:
                    self.failed.append(f"status {status}")
            except OSError as exc:
                self.failed.append(str(exc))
            time.sleep(self.interval)

    def __enter__(self) -> RequestLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
