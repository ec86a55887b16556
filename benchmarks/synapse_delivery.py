"""Synapse message delivery: the program's `small` tuning against the Synapse guide's own config.

    python -m benchmarks.synapse_delivery [--users 20,50] [--messages 5] [--interval 2] [--readers 2]

Deploys, one after the other on the local Docker engine and under the same container limits
(Synapse 1280 MB / 0.6 CPU, PostgreSQL 384 MB / 0.3 CPU):

- tuned: the program's stack (default `dev`, profile `small`) applied with the end-to-end
  harness, Synapse only, through the stand-in images;
- guide: the guide's homeserver.yaml (§3.5) and compose limits (§3.8) in the same images.

For each: cold start (Synapse container start to the first 200 from /health); then, per user
count N, N users in one fresh room each send M messages at a steady rate while readers /sync;
delivery latency is send start to the reader's /sync response that carries the message.
Prints both sides in one table with the relative change. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import docker.errors  # noqa: E402

from benchmarks import guide_baseline, matrix_load  # noqa: E402
from benchmarks.docker_stats import StatsSampler, Usage  # noqa: E402
from config.merge import deep_merge  # noqa: E402
from tests.e2e.harness import ApplyError, apply_program, engine_unavailable_reason  # noqa: E402
from tests.e2e.stacks import LOCAL_IMAGES, local_overrides  # noqa: E402

# The same on both sides: the load clients register, log in, join and send faster than the
# guide's (and the small profile's) per-user limits allow.
LOAD_RATE_LIMITS: dict[str, Any] = {
    "rc_registration": {"per_second": 50, "burst_count": 500},
    "rc_login": {
        "address": {"per_second": 50, "burst_count": 500},
        "account": {"per_second": 50, "burst_count": 500},
        "failed_attempts": {"per_second": 50, "burst_count": 500},
    },
    "rc_message": {"per_second": 50, "burst_count": 500},
    "rc_joins": {"local": {"per_second": 50, "burst_count": 500}},
    "rc_joins_per_room": {"per_second": 50, "burst_count": 500},
    "rc_room_creation": {"per_second": 50, "burst_count": 500},
}

HEALTH_TIMEOUT = 300
Side = TypeVar("Side")
SETTLE_SECONDS = 3.0
PASSWORD = "bench-" + uuid.uuid4().hex


@dataclass
class PhaseFigures:
    users: int
    sent: int
    send_errors: int
    undelivered: int
    limited_syncs: int
    retries_after_429: int
    delivery_p50: float
    delivery_p95: float
    delivery_max: float
    send_p95: float
    messages_per_second: float
    offered_per_second: float
    synapse: Usage | None
    postgres: Usage | None


@dataclass
class SideFigures:
    side: str
    cold_start: float
    restarts: int
    phases: list[PhaseFigures] = field(default_factory=list)
    idle_memory: dict[str, float] = field(default_factory=dict)


# --- health and cold start ------------------------------------------------------------------------


class HealthWatch:
    """Polls /health from before the container exists; remembers the wall time of the first 200."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/health"
        self.first_ok: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        while not self._stop.is_set() and self.first_ok is None:
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    if response.status == 200:
                        self.first_ok = time.time()
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(0.05)

    def wait(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.first_ok is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.url} did not answer 200 within {timeout:.0f} s")
            time.sleep(0.1)
        return self.first_ok


def started_at(client: docker.DockerClient, container_id: str) -> tuple[float, int]:
    """The container's last start (epoch seconds) and its restart count."""
    inspect = client.api.inspect_container(container_id)
    stamp = inspect["State"]["StartedAt"]  # RFC 3339 with nanoseconds
    head, _, tail = stamp.partition(".")
    fraction = tail.rstrip("Z")[:6]
    moment = datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")
    return moment.timestamp(), int(inspect.get("RestartCount", 0))


# --- the load -------------------------------------------------------------------------------------


async def _load(base_url: str, label: str, args: argparse.Namespace, sampler: StatsSampler) -> list[PhaseFigures]:
    figures: list[PhaseFigures] = []
    async with matrix_load.session() as http:
        api = matrix_load.Api(http, base_url)
        tag = uuid.uuid4().hex[:6]
        most = max(args.users)
        began = time.monotonic()
        senders = await matrix_load.register_many(api, [f"s{tag}{i}" for i in range(most)], PASSWORD)
        readers = await matrix_load.register_many(api, [f"r{tag}{i}" for i in range(args.readers)], PASSWORD)
        log(f"{label}: registered {most + args.readers} users in {time.monotonic() - began:.1f} s")
        for users in args.users:
            room = await matrix_load.create_room(api, senders[0], f"bench {users}")
            began = time.monotonic()
            await matrix_load.join_all(api, senders[1:users] + readers, room)
            log(f"{label}: N={users}: {users - 1 + args.readers} joins in {time.monotonic() - began:.1f} s")
            await asyncio.sleep(SETTLE_SECONDS)
            result = await matrix_load.run_phase(
                api, senders[:users], readers, [room], args.messages, args.interval, args.drain, args.senders_sync
            )
            end = max(result.last_delivery, result.last_send)
            latencies = result.delivery_latencies
            phase = PhaseFigures(
                users=users,
                sent=result.sent,
                send_errors=result.send_errors,
                undelivered=result.undelivered,
                limited_syncs=result.limited_syncs,
                retries_after_429=result.retries_after_429,
                delivery_p50=matrix_load.percentile(latencies, 0.50),
                delivery_p95=matrix_load.percentile(latencies, 0.95),
                delivery_max=max(latencies) if latencies else math.nan,
                send_p95=matrix_load.percentile(result.send_latencies, 0.95),
                messages_per_second=result.messages_per_second,
                offered_per_second=users / args.interval,
                synapse=sampler.usage("synapse", result.first_send, end),
                postgres=sampler.usage("postgres", result.first_send, end),
            )
            log(
                f"{label}: N={users}: p50 {phase.delivery_p50:.2f} s, p95 {phase.delivery_p95:.2f} s, "
                f"max {phase.delivery_max:.2f} s, {phase.messages_per_second:.1f} msg/s, "
                f"{phase.undelivered} undelivered, {phase.send_errors} send errors"
            )
            figures.append(phase)
    return figures


def run_load(base_url: str, label: str, args: argparse.Namespace, sampler: StatsSampler) -> list[PhaseFigures]:
    return asyncio.run(_load(base_url, label, args, sampler))


def idle_memory(sampler: StatsSampler, seconds: float = 3.0) -> dict[str, float]:
    time.sleep(seconds)
    now = time.monotonic()
    usage = {role: sampler.usage(role, now - seconds, now) for role in sampler.containers}
    return {role: value.memory_peak_mb for role, value in usage.items() if value is not None}


# --- the two sides --------------------------------------------------------------------------------


def tuned_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = local_overrides(
        args.tuned_prefix,
        args.tuned_port,
        {
            "proxy": {"enabled": False},
            "voicegrow": {"enabled": False},
            "backup": {"enabled": False},
            "synapse": {"registration": "open", "extra_config": LOAD_RATE_LIMITS},
        },
    )
    if args.tuned_log_level:
        overrides = deep_merge(overrides, {"synapse": {"log_level": args.tuned_log_level}})
    if args.tuned_overrides:
        overrides = deep_merge(overrides, json.loads(args.tuned_overrides))
    return overrides


def run_tuned(client: docker.DockerClient, args: argparse.Namespace) -> SideFigures:
    base_url = f"http://127.0.0.1:{args.tuned_port}"
    label = f"tuned ({args.stack}/small)"
    with HealthWatch(base_url) as health:
        log(f"{label}: applying the program's stack {args.stack!r} with the harness")
        applied = apply_program(ROOT, args.stack, tuned_overrides(args))
        try:
            first_ok = health.wait(HEALTH_TIMEOUT)
        except BaseException:
            applied.destroy()
            raise
    try:
        synapse = applied.containers[f"{args.tuned_prefix}-synapse"]
        postgres = applied.containers[f"{args.tuned_prefix}-synapse-postgres"]
        start, restarts = started_at(client, synapse)
        side = SideFigures("tuned", first_ok - start, restarts)
        log(f"{label}: Synapse start to /health {side.cold_start:.1f} s (apply took {applied.duration_seconds:.0f} s)")
        sampler = StatsSampler(client, {"synapse": synapse, "postgres": postgres}).start()
        try:
            side.idle_memory = idle_memory(sampler)
            side.phases = run_load(base_url, label, args, sampler)
        finally:
            sampler.stop()
        return side
    finally:
        applied.destroy()


def run_guide(client: docker.DockerClient, args: argparse.Namespace) -> SideFigures:
    label = "guide (§3.5/§3.8)"
    deployment = guide_baseline.GuideDeployment(
        client,
        args.guide_prefix,
        args.guide_port,
        {"postgres": LOCAL_IMAGES["postgres"], "synapse": LOCAL_IMAGES["synapse"]},
        LOAD_RATE_LIMITS,
    )
    password = guide_baseline.generated_password()
    try:
        log(f"{label}: starting the guide's PostgreSQL and Synapse with the Docker SDK")
        deployment.start_postgres(password)
        deployment.wait_postgres()
        with HealthWatch(deployment.base_url) as health:
            deployment.start_synapse(password)
            first_ok = health.wait(HEALTH_TIMEOUT)
        start, restarts = started_at(client, deployment.containers["synapse"])
        side = SideFigures("guide", first_ok - start, restarts)
        log(f"{label}: Synapse start to /health {side.cold_start:.1f} s")
        sampler = StatsSampler(client, dict(deployment.containers)).start()
        try:
            side.idle_memory = idle_memory(sampler)
            side.phases = run_load(deployment.base_url, label, args, sampler)
        finally:
            sampler.stop()
        return side
    except BaseException:
        for role, container_id in deployment.containers.items():
            try:
                tail = client.api.logs(container_id, tail=20).decode(errors="replace")
                log(f"{label}: last log lines of {role}:\n{tail}")
            except docker.errors.APIError:
                pass
        raise
    finally:
        leftovers = deployment.remove()
        if leftovers:
            log(f"{label}: teardown left objects behind: {leftovers}")


# --- preflight and cleanup ------------------------------------------------------------------------


def remove_leftovers(client: docker.DockerClient, prefixes: list[str]) -> None:
    """Objects of an earlier, interrupted run of this benchmark (only its own name prefixes)."""

    def ours(name: str) -> bool:
        return any(name.startswith(f"{prefix}-") for prefix in prefixes)

    for container in client.containers.list(all=True):
        if ours(container.name):
            log(f"removing leftover container {container.name}")
            container.remove(force=True, v=True)
    for network in client.networks.list():
        if ours(network.name):
            log(f"removing leftover network {network.name}")
            network.remove()
    for volume in client.volumes.list():
        if ours(volume.name):
            log(f"removing leftover volume {volume.name}")
            volume.remove(force=True)


def preflight(client: docker.DockerClient) -> None:
    missing = []
    for role in ("postgres", "synapse", "nginx"):
        try:
            client.api.inspect_image(LOCAL_IMAGES[role])
        except docker.errors.ImageNotFound:
            missing.append(LOCAL_IMAGES[role])
    if missing:
        sys.exit(f"stand-in images missing: {', '.join(missing)}; build them with tests/e2e/images/build.sh")


def run_in_order(client: docker.DockerClient, prefixes: list[str], sequence: list[str], run: Callable[[str], Side]) -> dict[str, list[Side]] | None:
    """`run` each side of `sequence` in turn, its results by side. What an interrupted run left
    (objects named with `prefixes`) is removed before, and everything again after, on failure
    too; None, with the failure printed, when a side failed. Closes the client."""
    remove_leftovers(client, prefixes)
    began = time.monotonic()
    rounds: dict[str, list[Side]] = {side: [] for side in dict.fromkeys(sequence)}
    try:
        for side in sequence:
            rounds[side].append(run(side))
    except (ApplyError, RuntimeError, matrix_load.MatrixError, docker.errors.DockerException) as exc:
        traceback.print_exc()
        log(f"benchmark failed: {exc}")
        return None
    finally:
        remove_leftovers(client, prefixes)
        client.close()
    log(f"benchmark took {time.monotonic() - began:.0f} s")
    return rounds


# --- the report ---------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def finite_median(values: list[float]) -> float:
    """The median of the values that are numbers (a side that did not run gives NaN)."""
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else math.nan


def _median_usage(values: list[Usage | None]) -> Usage | None:
    present = [value for value in values if value is not None]
    if not present:
        return None
    return Usage(
        cpu_mean=finite_median([value.cpu_mean for value in present]),
        cpu_peak=finite_median([value.cpu_peak for value in present]),
        memory_peak_mb=finite_median([value.memory_peak_mb for value in present]),
        samples=sum(value.samples for value in present),
    )


COUNTERS = ("sent", "send_errors", "undelivered", "limited_syncs", "retries_after_429")


def combine(rounds: list[SideFigures]) -> SideFigures:
    """One side's rounds as one: the median of each figure, counters summed."""
    if len(rounds) == 1:
        return rounds[0]
    phases = []
    for index, first in enumerate(rounds[0].phases):
        same = [side.phases[index] for side in rounds]
        values: dict[str, Any] = {"users": first.users, "offered_per_second": first.offered_per_second}
        for name in PhaseFigures.__dataclass_fields__:
            if name in values:
                continue
            items = [getattr(phase, name) for phase in same]
            if name in COUNTERS:
                values[name] = sum(items)
            elif name in ("synapse", "postgres"):
                values[name] = _median_usage(items)
            else:
                values[name] = finite_median(items)
        phases.append(PhaseFigures(**values))
    roles = {role for side in rounds for role in side.idle_memory}
    return SideFigures(
        rounds[0].side,
        finite_median([side.cold_start for side in rounds]),
        sum(side.restarts for side in rounds),
        phases,
        {role: finite_median([side.idle_memory.get(role, math.nan) for side in rounds]) for role in roles},
    )


def _change(guide: float, tuned: float, lower_is_better: bool) -> str:
    if not (math.isfinite(guide) and math.isfinite(tuned)) or guide == 0:
        return ""
    change = (tuned - guide) / abs(guide) * 100
    if abs(change) < 0.5:
        return f"{change:+.0f}%"
    better = (change < 0) == lower_is_better
    return f"{change:+.0f}% {'better' if better else 'worse'}"


def _row(name: str, guide: float, tuned: float, unit: str, lower_is_better: bool | None, digits: int = 2) -> str:
    def cell(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}{unit}"

    change = "" if lower_is_better is None else _change(guide, tuned, lower_is_better)
    return f"  {name:<34}{cell(guide):>12}{cell(tuned):>12}  {change}"


def _usage(phase: PhaseFigures, role: str, name: str) -> float:
    usage = getattr(phase, role)
    return getattr(usage, name) if usage is not None else math.nan


def _not_run(side: str, users: list[int], interval: float) -> SideFigures:
    nan = math.nan
    phases = [PhaseFigures(n, 0, 0, 0, 0, 0, nan, nan, nan, nan, nan, n / interval, None, None) for n in users]
    return SideFigures(side, nan, 0, phases)


def report(args: argparse.Namespace, rounds: dict[str, list[SideFigures]]) -> str:
    sides = {name: combine(values) for name, values in rounds.items() if values}
    guide = sides.get("guide") or _not_run("guide", args.users, args.interval)
    tuned = sides.get("tuned") or _not_run("tuned", args.users, args.interval)
    count = max(len(values) for values in rounds.values())
    lines = [
        "",
        "Synapse delivery: the guide's homeserver.yaml (guide) against the program's small profile (tuned)",
        "  limits on both sides: Synapse 1280 MB / 0.6 CPU, PostgreSQL 384 MB / 0.3 CPU; "
        f"engine host: {os.cpu_count()} cores",
        f"  workload: N users in one room, {args.messages} messages each, one every {args.interval:g} s "
        f"(N/{args.interval:g} msg/s offered), {args.readers} readers on /sync"
        + (", the senders on /sync too" if args.senders_sync else ""),
        f"  tuned = stack {args.stack!r} applied by the harness"
        + (f", Synapse log level {args.tuned_log_level}" if args.tuned_log_level else "")
        + (f", overrides {args.tuned_overrides}" if args.tuned_overrides else ""),
        f"  {count} round(s), sides run in the order {' '.join(args.sequence)}"
        + ("; figures are medians over the rounds" if count > 1 else ""),
        "",
        f"  {'':<34}{'guide':>12}{'tuned':>12}  change",
        _row("cold start to /health", guide.cold_start, tuned.cold_start, " s", True, 1),
    ]
    for role, name in (("synapse", "Synapse"), ("postgres", "PostgreSQL")):
        idle = [side.idle_memory.get(role, math.nan) for side in (guide, tuned)]
        lines.append(_row(f"idle memory {name}", *idle, " MB", True, 0))
    for index, (g, t) in enumerate(zip(guide.phases, tuned.phases)):
        lines.append(f"  N = {g.users} users ({g.offered_per_second:g} msg/s offered)")
        lines += [
            _row("delivery p50", g.delivery_p50, t.delivery_p50, " s", True),
            _row("delivery p95", g.delivery_p95, t.delivery_p95, " s", True),
            _row("delivery max", g.delivery_max, t.delivery_max, " s", True),
            _row("send request p95", g.send_p95, t.send_p95, " s", True),
            _row("messages/s delivered", g.messages_per_second, t.messages_per_second, "", False, 1),
        ]
        for role, name in (("synapse", "Synapse"), ("postgres", "PostgreSQL")):
            for figure, label, unit, lower_is_better in (
                ("cpu_mean", "CPU mean (% of one core)" if role == "synapse" else "CPU mean", "%", None),
                ("cpu_peak", "CPU peak", "%", None),
            ):
                values = (_usage(g, role, figure), _usage(t, role, figure))
                lines.append(_row(f"{name} {label}", *values, unit, lower_is_better, 0))
        for role, name in (("synapse", "Synapse"), ("postgres", "PostgreSQL")):
            values = (_usage(g, role, "memory_peak_mb"), _usage(t, role, "memory_peak_mb"))
            lines.append(_row(f"{name} memory peak", *values, " MB", True, 0))
        if count > 1:
            per_round = {
                name: " ".join(f"{side.phases[index].delivery_p95:.2f}" for side in values)
                for name, values in rounds.items()
            }
            lines.append("    p95 per round: " + "; ".join(f"{name} {figures}" for name, figures in per_round.items()))
        anomalies = [
            f"{side} {what.replace('_', ' ')} {getattr(phase, what)}"
            for side, phase in (("guide", g), ("tuned", t))
            for what in ("send_errors", "undelivered", "retries_after_429", "limited_syncs")
            if getattr(phase, what)
        ]
        if anomalies:
            lines.append("    note: " + ", ".join(anomalies))
    restarts = [
        f"{side.side} Synapse restarted {side.restarts}x before /health" for side in (guide, tuned) if side.restarts
    ]
    if restarts:
        lines.append("  note: " + ", ".join(restarts))
    lines.append(
        "  CPU: mean and peak of the engine's 1 s samples while the messages flowed "
        "(a 0.6 CPU limit caps Synapse at 60%)."
    )
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", default="20,50", help="user counts, one room each (default 20,50)")
    parser.add_argument("--messages", type=int, default=5, help="messages per user (default 5)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between one user's messages (default 2)")
    parser.add_argument(
        "--readers", type=int, default=2, help="users that only /sync and time the deliveries (default 2)"
    )
    parser.add_argument(
        "--senders-sync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="senders also long-poll /sync, as users' apps do (default; --no-senders-sync: only the readers)",
    )
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for deliveries after the last send")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds; the order reverses every other round (guide tuned tuned guide ...) and the "
        "table shows medians (default 2)",
    )
    parser.add_argument(
        "--order",
        default="guide,tuned",
        help="sides of the first round, in order (default guide,tuned; one side alone for experiments)",
    )
    parser.add_argument("--stack", default="dev", help="the program's stack for the tuned side (default dev)")
    parser.add_argument(
        "--tuned-log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="override the stack's Synapse log level",
    )
    parser.add_argument("--tuned-overrides", help="JSON deep-merged into the tuned side's stack config (experiments)")
    parser.add_argument("--tuned-prefix", default="bench-tuned")
    parser.add_argument("--tuned-port", type=int, default=18500)
    parser.add_argument("--guide-prefix", default="bench-guide")
    parser.add_argument("--guide-port", type=int, default=18510)
    parser.add_argument("--json", type=Path, help="also write every round's figures to this JSON file")
    args = parser.parse_args(argv)
    args.users = [int(value) for value in str(args.users).split(",") if value.strip()]
    args.order = [value.strip() for value in args.order.split(",")]
    if not args.order or len(set(args.order)) != len(args.order) or not set(args.order) <= {"guide", "tuned"}:
        parser.error("--order names guide and/or tuned, each once")
    if not args.users or min(args.users) < 1 or args.messages < 1 or args.interval <= 0 or args.readers < 1:
        parser.error("users, messages, interval and readers must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.sequence = [
        side for number in range(args.rounds) for side in (args.order if number % 2 == 0 else args.order[::-1])
    ]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = engine_unavailable_reason()
    if reason:
        sys.exit(reason)
    client = docker.from_env(timeout=300, max_pool_size=16)
    preflight(client)
    rounds = run_in_order(
        client,
        [args.tuned_prefix, args.guide_prefix],
        args.sequence,
        lambda side: run_guide(client, args) if side == "guide" else run_tuned(client, args),
    )
    if rounds is None:
        return 1
    print(report(args, rounds))
    if args.json:
        args.json.write_text(
            json.dumps({name: [asdict(side) for side in values] for name, values in rounds.items()}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
