"""Synapse past one core: CPU weights on one core, workers on two, each compared side by side in one run.

    python -m benchmarks.synapse_workers one-core [--users 50] [--messages 3] [--interval 5]
    python -m benchmarks.synapse_workers two-cores [--users 50] [--messages 3] [--interval 5]

- one-core: the Synapse guide's own config and limits (Synapse 0.6 CPU, PostgreSQL 0.3) against
  the program's `small` profile (CPU weights, no cap), every container of both pinned to the
  same core: the guide's machine size.
- two-cores: the `medium` profile without workers against the same profile with workers
  (`synapse.workers`), both behind the program's proxy, every container pinned to the same
  two cores.

The sides run one after the other on the same engine under the same load: N users in one room,
each sending M messages one every I seconds while every user long-polls /sync (see
benchmarks/README.md). For each side: delivery p50/p95/max, send p95, messages/s delivered
against offered, and CPU and memory per container. Prints one table with the ratio of the
second side to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from benchmarks import guide_baseline, matrix_load
from benchmarks.docker_stats import StatsSampler, Usage
from benchmarks.synapse_delivery import (
    HEALTH_TIMEOUT,
    LOAD_RATE_LIMITS,
    PASSWORD,
    ROOT,
    SETTLE_SECONDS,
    HealthWatch,
    log,
    preflight,
    remove_leftovers,
)
from config.merge import deep_merge
from tests.e2e.harness import ApplyError, apply_program, engine_unavailable_reason
from tests.e2e.hostnames import resolve_to_loopback
from tests.e2e.stacks import LOCAL_IMAGES, local_overrides

DOMAIN = "bench-workers.test"
MATRIX_HOST = f"matrix.{DOMAIN}"
MODES = {"one-core": "0", "two-cores": "0,1"}
"""Each mode and the cores every container of both sides is pinned to."""


@dataclass
class SideFigures:
    """One side's figures under the load."""

    side: str
    users: int
    offered_per_second: float
    delivery_p50: float = math.nan
    delivery_p95: float = math.nan
    delivery_max: float = math.nan
    send_p95: float = math.nan
    messages_per_second: float = math.nan
    undelivered: int = 0
    send_errors: int = 0
    usage: dict[str, Usage] = field(default_factory=dict)
    """Per container (its name without the prefix) while the messages flowed."""


# --- the load -------------------------------------------------------------------------------------


async def _load(base_url: str, label: str, args: argparse.Namespace, sampler: StatsSampler) -> SideFigures:
    async with matrix_load.session() as http:
        api = matrix_load.Api(http, base_url)
        tag = uuid.uuid4().hex[:6]
        began = time.monotonic()
        senders = await matrix_load.register_many(api, [f"s{tag}{i}" for i in range(args.users)], PASSWORD)
        readers = await matrix_load.register_many(api, [f"r{tag}{i}" for i in range(args.readers)], PASSWORD)
        log(f"{label}: registered {args.users + args.readers} users in {time.monotonic() - began:.1f} s")
        room = await matrix_load.create_room(api, senders[0], f"bench {args.users}")
        await matrix_load.join_all(api, senders[1:] + readers, room)
        await asyncio.sleep(SETTLE_SECONDS)
        result = await matrix_load.run_phase(api, senders, readers, room, args.messages, args.interval, args.drain, True)
    end = max(result.last_delivery, result.last_send)
    figures = SideFigures(
        side=label,
        users=args.users,
        offered_per_second=args.users / args.interval,
        delivery_p50=matrix_load.percentile(result.delivery_latencies, 0.50),
        delivery_p95=matrix_load.percentile(result.delivery_latencies, 0.95),
        delivery_max=max(result.delivery_latencies) if result.delivery_latencies else math.nan,
        send_p95=matrix_load.percentile(result.send_latencies, 0.95),
        messages_per_second=result.messages_per_second,
        undelivered=result.undelivered,
        send_errors=result.send_errors,
    )
    for role in sampler.containers:
        usage = sampler.usage(role, result.first_send, end)
        if usage is not None:
            figures.usage[role] = usage
    log(
        f"{label}: p50 {figures.delivery_p50:.2f} s, p95 {figures.delivery_p95:.2f} s, "
        f"{figures.messages_per_second:.1f} msg/s of {figures.offered_per_second:g} offered, "
        f"{figures.undelivered} undelivered, {figures.send_errors} send errors"
    )
    return figures


def measure(client: docker.DockerClient, label: str, base_url: str, containers: dict[str, str], cpuset: str, args: argparse.Namespace) -> SideFigures:
    """Pin `containers` (name -> id) to `cpuset`, then run the load against `base_url` while sampling them."""
    for container_id in containers.values():
        client.api.update_container(container_id, cpuset_cpus=cpuset)
    sampler = StatsSampler(client, containers).start()
    try:
        # The proxy routes by host name: the side's public host resolves to this machine.
        with resolve_to_loopback(DOMAIN):
            return asyncio.run(_load(base_url, label, args, sampler))
    finally:
        sampler.stop()


# --- the sides ------------------------------------------------------------------------------------


def run_program_side(client: docker.DockerClient, label: str, overrides: dict[str, Any], base_url: str, cpuset: str, args: argparse.Namespace) -> SideFigures:
    """The program's stack `dev` with `overrides`, applied by the end-to-end harness, under the load."""
    log(f"{label}: applying the program's stack with the harness")
    applied = apply_program(ROOT, "dev", overrides)
    try:
        prefix = overrides["prefix"]
        containers = {
            name.removeprefix(f"{prefix}-"): container_id
            for name, container_id in applied.containers.items()
            if not name.endswith("-files") and not name.endswith("-healer")
        }
        log(f"{label}: {len(containers)} containers healthy after {applied.duration_seconds:.0f} s")
        return measure(client, label, base_url, containers, cpuset, args)
    finally:
        applied.destroy()


def run_guide_side(client: docker.DockerClient, cpuset: str, args: argparse.Namespace) -> SideFigures:
    """The guide's homeserver.yaml and compose limits, started with the Docker SDK, under the load."""
    label = "guide"
    deployment = guide_baseline.GuideDeployment(
        client,
        f"{args.prefix}-guide",
        args.port + 10,
        {"postgres": LOCAL_IMAGES["postgres"], "synapse": LOCAL_IMAGES["synapse"]},
        LOAD_RATE_LIMITS,
        cpuset=cpuset,
    )
    try:
        password = guide_baseline.generated_password()
        deployment.start_postgres(password)
        deployment.wait_postgres()
        with HealthWatch(deployment.base_url) as health:
            deployment.start_synapse(password)
            health.wait(HEALTH_TIMEOUT)
        return measure(client, label, deployment.base_url, dict(deployment.containers), cpuset, args)
    finally:
        deployment.remove()


def program_overrides(args: argparse.Namespace, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The program's stack for one side: its own prefix, Synapse only, registration open, the load's rate limits."""
    common = {
        "voicegrow": {"enabled": False},
        "backup": {"enabled": False},
        "healer": {"enabled": False},
        "synapse": {"registration": "open", "extra_config": LOAD_RATE_LIMITS},
    }
    return local_overrides(f"{args.prefix}-{name}", args.port, deep_merge(common, extra))


def one_core(client: docker.DockerClient, args: argparse.Namespace) -> list[SideFigures]:
    """The guide against `small`, every container on one core."""
    cpuset = MODES["one-core"]
    small = program_overrides(args, "small", {"profile": "small", "proxy": {"enabled": False}})
    return [
        run_guide_side(client, cpuset, args),
        run_program_side(client, "small", small, f"http://127.0.0.1:{args.port}", cpuset, args),
    ]


def two_cores(client: docker.DockerClient, args: argparse.Namespace) -> list[SideFigures]:
    """`medium` without workers against `medium` with, both behind the proxy, every container on two cores."""
    cpuset = MODES["two-cores"]
    base_url = f"http://{MATRIX_HOST}:{args.port + 6}"
    sides = []
    for name, workers in (("medium", False), ("workers", True)):
        overrides = program_overrides(
            args,
            name,
            {
                "profile": "medium",
                "tls": "off",
                "synapse": {"server_name": DOMAIN, "public_host": MATRIX_HOST, "workers": workers},
            },
        )
        sides.append(run_program_side(client, name, overrides, base_url, cpuset, args))
    return sides


# --- the report -----------------------------------------------------------------------------------


def _cell(value: float, unit: str, digits: int) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}{unit}"


def _ratio(first: float, second: float) -> str:
    if not (math.isfinite(first) and math.isfinite(second)) or first == 0:
        return ""
    return f"{second / first:.2f}x"


def report(mode: str, args: argparse.Namespace, sides: list[SideFigures]) -> str:
    first, second = sides
    rows: list[tuple[str, Callable[[SideFigures], float], str, int]] = [
        ("delivery p50", lambda side: side.delivery_p50, " s", 2),
        ("delivery p95", lambda side: side.delivery_p95, " s", 2),
        ("delivery max", lambda side: side.delivery_max, " s", 2),
        ("send request p95", lambda side: side.send_p95, " s", 2),
        ("messages/s delivered", lambda side: side.messages_per_second, "", 1),
    ]
    lines = [
        "",
        f"Synapse {mode}: {first.side} against {second.side}, every container pinned to cores {MODES[mode]}",
        f"  workload: {args.users} users in one room, {args.messages} messages each, one every {args.interval:g} s "
        f"({first.offered_per_second:g} msg/s offered), {args.readers} readers; every user long-polls /sync",
        "",
        f"  {'':<40}{first.side:>12}{second.side:>12}  ratio",
    ]
    for name, figure, unit, digits in rows:
        a, b = figure(first), figure(second)
        lines.append(f"  {name:<40}{_cell(a, unit, digits):>12}{_cell(b, unit, digits):>12}  {_ratio(a, b)}")
    for side in sides:
        lines.append(f"  {side.side}: CPU mean / peak (% of one core), memory peak, per container")
        for role, usage in sorted(side.usage.items()):
            lines.append(f"    {role:<38}{usage.cpu_mean:>6.0f}% {usage.cpu_peak:>6.0f}% {usage.memory_peak_mb:>8.0f} MB")
        total = sum(usage.cpu_mean for usage in side.usage.values())
        lines.append(f"    {'all containers':<38}{total:>6.0f}%")
        if side.undelivered or side.send_errors:
            lines.append(f"    note: {side.undelivered} undelivered, {side.send_errors} send errors")
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=list(MODES), help="one-core: guide against small; two-cores: medium without and with workers")
    parser.add_argument("--users", type=int, default=50, help="users sending in one room (default 50)")
    parser.add_argument("--messages", type=int, default=3, help="messages per user (default 3)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between one user's messages (default 5)")
    parser.add_argument("--readers", type=int, default=2, help="users that only /sync and time the deliveries (default 2)")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for deliveries after the last send")
    parser.add_argument("--prefix", default="bench-cores")
    parser.add_argument("--port", type=int, default=18520)
    args = parser.parse_args(argv)
    if min(args.users, args.messages, args.readers) < 1 or args.interval <= 0:
        parser.error("users, messages, interval and readers must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = engine_unavailable_reason()
    if reason:
        sys.exit(reason)
    client = docker.from_env(timeout=300, max_pool_size=32)
    preflight(client)
    prefixes = [f"{args.prefix}-{name}" for name in ("guide", "small", "medium", "workers")]
    remove_leftovers(client, prefixes)
    began = time.monotonic()
    try:
        sides = one_core(client, args) if args.mode == "one-core" else two_cores(client, args)
    except (ApplyError, RuntimeError, matrix_load.MatrixError, docker.errors.DockerException) as exc:
        traceback.print_exc()
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        remove_leftovers(client, prefixes)
        client.close()
    log(f"benchmark took {time.monotonic() - began:.0f} s")
    print(report(args.mode, args, sides))
    return 0


if __name__ == "__main__":
    sys.exit(main())
