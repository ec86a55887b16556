"""Synapse on a fair bench: the servers on cores of their own, the load client on the others, CPU
per delivered message from the containers' cgroup counters, the sides alternated over rounds.

    python -m benchmarks.synapse_fair one-core [--rounds 2] [--loads 50x1,60x20] [--messages 4] [--interval 3]
    python -m benchmarks.synapse_fair two-cores [...]
    python -m benchmarks.synapse_fair lever --lever '{"synapse": {"extra_config": {"caches": {"global_factor": 1.0}}}}'

- one-core: the Synapse guide's homeserver.yaml and compose limits (Synapse 0.6 CPU, PostgreSQL
  0.3) against the program's `small` profile, every server container pinned to core 0.
- two-cores: the `medium` profile as it is against `medium` with Synapse's workers, both behind
  the program's proxy, every server container pinned to cores 0 and 1.
- lever: `small` against `small` with the stack settings of `--lever` merged over it, on core 0:
  whether one change pays.

This process (the load client and every thread it starts) runs on the remaining cores; where none
remain, the figures are printed marked "not quoted". The client talks to the containers' own
addresses on their bridge, not to a published port, so that no docker-proxy process (outside the
containers' cgroups, on any core) carries the traffic. Both sides run the same images with the
same rate limits. Each round deploys each side afresh and runs every load on it; the order of the
sides reverses every round. Per side and load: delivery p50/p95/max, send p95, messages/s
delivered, CPU-seconds per 1,000 delivered messages (all of the side's containers, from their
cgroup CPU counters, from the first send to the last delivery) and memory peak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import docker.errors  # noqa: E402

from benchmarks import guide_baseline, matrix_load  # noqa: E402
from benchmarks.docker_stats import StatsSampler  # noqa: E402
from benchmarks.synapse_delivery import (  # noqa: E402
    HEALTH_TIMEOUT,
    LOAD_RATE_LIMITS,
    PASSWORD,
    SETTLE_SECONDS,
    HealthWatch,
    finite_median,
    log,
    preflight,
    run_in_order,
)
from config.merge import deep_merge  # noqa: E402
from tests.e2e.harness import apply_program, engine_unavailable_reason  # noqa: E402
from tests.e2e.hostnames import resolve_to  # noqa: E402
from tests.e2e.stacks import LOCAL_IMAGES, local_overrides  # noqa: E402

DOMAIN = "bench-fair.test"
MATRIX_HOST = f"matrix.{DOMAIN}"


@dataclass(frozen=True)
class Mode:
    server_cores: set[int]
    sides: tuple[str, str]
    """The side the ratios are taken against, then the side they describe."""


MODES = {
    "one-core": Mode({0}, ("guide", "small")),
    "two-cores": Mode({0, 1}, ("medium", "workers")),
    "lever": Mode({0}, ("small", "lever")),
}


@dataclass(frozen=True)
class Load:
    users: int
    rooms: int

    @classmethod
    def parse(cls, text: str) -> Load:
        users, _, rooms = text.strip().partition("x")
        return cls(int(users), int(rooms or 1))

    def __str__(self) -> str:
        return f"{self.users} users in {self.rooms} room{'s' if self.rooms > 1 else ''}"


@dataclass
class LoadFigures:
    """One side's figures under one load, in one round."""

    delivery_p50: float
    delivery_p95: float
    delivery_max: float
    send_p95: float
    messages_per_second: float
    delivered: int
    """Messages that reached every reader."""
    undelivered: int
    send_errors: int
    cpu_seconds: dict[str, float]
    """Per container (its role), from the first send to the last delivery."""
    memory_peak_mb: dict[str, float] = field(default_factory=dict)
    host_steal_percent: float = 0.0
    """CPU time the hypervisor gave to others meanwhile, in % of the host's: a noisy neighbour shows here."""

    def cpu_per_1000(self, counted: Callable[[str], bool] = lambda role: True) -> float:
        """CPU-seconds of the counted containers per 1,000 delivered messages."""
        seconds = sum(value for role, value in self.cpu_seconds.items() if counted(role))
        return seconds / self.delivered * 1000 if self.delivered else math.nan


def homeserver(role: str) -> bool:
    """Synapse's processes and its database (and Redis, with workers): what both sides run. The
    guide's containers are `synapse` and `postgres`; the program's `synapse`, `synapse-postgres`,
    its workers and the .well-known server, which is left out."""
    return role in ("synapse", "postgres") or (role.startswith("synapse-") and role != "synapse-wellknown")


@dataclass
class SideRun:
    """One side in one round: at rest after it was healthy and pinned, then under each load."""

    idle_cpu_percent: float
    """All of the side's containers, in % of one core, over `--idle` seconds before the loads."""
    loads: dict[Load, LoadFigures]


# --- cores and CPU counters -----------------------------------------------------------------------


def cgroup_cpu_seconds(pid: int) -> float:
    """The CPU time of the cgroup a process is in: cgroup v2 `cpu.stat`, or v1 `cpuacct.usage`."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "" and Path(f"/sys/fs/cgroup{path}/cpu.stat").exists():
            stat = dict(entry.split() for entry in Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text().splitlines())
            return int(stat["usage_usec"]) / 1e6
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct"):
                usage = Path(f"/sys/fs/cgroup/{mount}{path}/cpuacct.usage")
                if usage.exists():
                    return int(usage.read_text()) / 1e9
    raise RuntimeError(f"no CPU counter found for the cgroup of pid {pid}")


def host_ticks() -> tuple[int, int]:
    """The host's stolen and total CPU ticks so far (/proc/stat)."""
    values = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[7], sum(values)


@dataclass
class CpuCounters:
    """The containers' cgroup CPU counters, read at the start of a window and again at its end."""

    client: docker.DockerClient
    containers: dict[str, str]
    started: dict[str, tuple[int, float]] = field(default_factory=dict)

    def _read(self) -> dict[str, tuple[int, float]]:
        pids = {role: self.client.api.inspect_container(cid)["State"]["Pid"] for role, cid in self.containers.items()}
        return {role: (pid, cgroup_cpu_seconds(pid)) for role, pid in pids.items() if pid}

    def start(self) -> None:
        self.started = self._read()

    def seconds(self) -> dict[str, float]:
        ended = self._read()
        restarted = [role for role in self.started if ended.get(role, (None,))[0] != self.started[role][0]]
        if restarted:
            # A restarted container has a new cgroup: its counter started again from zero.
            raise RuntimeError(f"restarted during the load, its CPU counter is void: {restarted}")
        return {role: ended[role][1] - self.started[role][1] for role in self.started}


def cpu_list(cores: set[int]) -> str:
    """Cores as `--cpuset-cpus` takes them: `0,1`."""
    return ",".join(str(core) for core in sorted(cores))


def pin(client: docker.DockerClient, containers: dict[str, str], cores: set[int]) -> None:
    for container_id in containers.values():
        client.api.update_container(container_id, cpuset_cpus=cpu_list(cores))


def address(client: docker.DockerClient, container_id: str) -> str:
    """The container's address on the first of its networks that gives it one."""
    networks = client.api.inspect_container(container_id)["NetworkSettings"]["Networks"]
    for network in networks.values():
        if network.get("IPAddress"):
            return network["IPAddress"]
    raise RuntimeError(f"container {container_id[:12]} has no address on a bridge network")


@contextmanager
def profiled(client: docker.DockerClient, container_id: str, output: Path) -> Iterator[None]:
    """py-spy samples the container's processes (100 times a second) while the block runs; the
    stacks, collapsed, go to `output`."""
    pid = client.api.inspect_container(container_id)["State"]["Pid"]
    # --gil: only the samples where a thread held the GIL, that is ran Python, not waited.
    command = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--gil", "--rate", "100", "--format", "raw", "--nonblocking", "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
        if not output.exists():
            log(f"py-spy wrote no profile: {errors.strip()[-500:]}")


def _frame(frame: str) -> tuple[str, str]:
    """`handle (synapse/rest/sync.py:10)` -> (`handle (sync.py)`, `synapse/rest`): the function,
    whatever line of it ran, and its package (the first two parts of a deeper path)."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0] if where else ""
    parts = path.split("/")
    package = "/".join(parts[:2]) if len(parts) > 2 else parts[0]
    return f"{name} ({parts[-1]})" if where else name, package or name


@dataclass(frozen=True)
class Profile:
    """Where the sampled CPU time went: shares of the samples by the package and by the function
    that was running (the innermost frame)."""

    samples: int
    packages: list[tuple[str, float]]
    functions: list[tuple[str, float]]

    def __str__(self) -> str:
        def shares(items: list[tuple[str, float]]) -> str:
            return ", ".join(f"{name} {share:.0%}" for name, share in items)

        return f"{self.samples} samples; by package: {shares(self.packages)}; by function: {shares(self.functions)}"


def where_the_time_goes(collapsed: Path, top: int = 8) -> Profile:
    """py-spy's collapsed stacks, summed by the innermost frame."""
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if ";" not in stack or not count.isdigit():
            continue  # not a stack, or a process's label with no Python frame under it
        function, package = _frame(stack.rsplit(";", 1)[-1])
        packages[package] += int(count)
        functions[function] += int(count)
    total = sum(functions.values())
    if not total:
        return Profile(0, [], [])
    return Profile(
        total,
        [(name, count / total) for name, count in packages.most_common(top)],
        [(name, count / total) for name, count in functions.most_common(top)],
    )


# --- the load -------------------------------------------------------------------------------------


async def _load(
    base_url: str, load: Load, args: argparse.Namespace, counters: CpuCounters, sampler: StatsSampler, profile: Path | None
) -> LoadFigures:
    async with matrix_load.session() as http:
        api = matrix_load.Api(http, base_url)
        tag = uuid.uuid4().hex[:6]
        senders = await matrix_load.register_many(api, [f"s{tag}{i}" for i in range(load.users)], PASSWORD)
        readers = await matrix_load.register_many(api, [f"r{tag}{i}" for i in range(args.readers)], PASSWORD)
        rooms = []
        for number in range(load.rooms):
            members = senders[number :: load.rooms]  # the senders matrix_load.room_of deals to this room
            room = await matrix_load.create_room(api, members[0], f"bench {tag} {number}")
            await matrix_load.join_all(api, members[1:] + readers, room)
            rooms.append(room)
        await asyncio.sleep(SETTLE_SECONDS)
        counters.start()
        stolen, ticks = host_ticks()
        with profiled(counters.client, counters.containers["synapse"], profile) if profile else nullcontext():
            result = await matrix_load.run_phase(api, senders, readers, rooms, args.messages, args.interval, args.drain, True)
        cpu_seconds = counters.seconds()
        stolen_after, ticks_after = host_ticks()
    end = max(result.last_delivery, result.last_send)
    memory = {role: usage.memory_peak_mb for role in sampler.containers if (usage := sampler.usage(role, result.first_send, end))}
    return LoadFigures(
        delivery_p50=matrix_load.percentile(result.delivery_latencies, 0.50),
        delivery_p95=matrix_load.percentile(result.delivery_latencies, 0.95),
        delivery_max=max(result.delivery_latencies, default=math.nan),
        send_p95=matrix_load.percentile(result.send_latencies, 0.95),
        messages_per_second=result.messages_per_second,
        delivered=result.sent - result.undelivered,
        undelivered=result.undelivered,
        send_errors=result.send_errors,
        cpu_seconds=cpu_seconds,
        memory_peak_mb=memory,
        host_steal_percent=(stolen_after - stolen) / max(ticks_after - ticks, 1) * 100,
    )


def measure(client: docker.DockerClient, side: str, base_url: str, containers: dict[str, str], mode: Mode, args: argparse.Namespace) -> SideRun:
    """Pin the side's containers to the servers' cores, measure them at rest, then run every load."""
    pin(client, containers, mode.server_cores)
    counters = CpuCounters(client, containers)
    counters.start()
    time.sleep(args.idle)
    idle = sum(counters.seconds().values()) / args.idle * 100
    log(f"{side}: at rest, all containers {idle:.1f} % of one core")
    sampler = StatsSampler(client, containers).start()
    figures = {}
    try:
        for load in args.loads:
            profile = args.profile / f"{side}-{load.users}x{load.rooms}-{time.strftime('%H%M%S')}.txt" if args.profile else None
            figures[load] = asyncio.run(_load(base_url, load, args, counters, sampler, profile))
            if profile and profile.exists():
                log(f"{side}, {load}: where Synapse's time went: {where_the_time_goes(profile)}")
            done = figures[load]
            log(
                f"{side}, {load}: p50 {done.delivery_p50:.2f} s, p95 {done.delivery_p95:.2f} s, "
                f"{done.messages_per_second:.1f} msg/s, {done.cpu_per_1000(homeserver):.1f} CPU-s per 1,000 delivered, "
                f"{done.undelivered} undelivered, {done.send_errors} send errors"
            )
    finally:
        sampler.stop()
    return SideRun(idle, figures)


# --- the sides ------------------------------------------------------------------------------------


@contextmanager
def guide_side(client: docker.DockerClient, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, str]]]:
    """The guide's PostgreSQL and Synapse, started with the Docker SDK as its compose file has them."""
    deployment = guide_baseline.GuideDeployment(
        client,
        f"{args.prefix}-guide",
        args.port + 10,
        {"postgres": LOCAL_IMAGES["postgres"], "synapse": LOCAL_IMAGES["synapse"]},
        LOAD_RATE_LIMITS,
    )
    password = guide_baseline.generated_password()
    try:
        deployment.start_postgres(password)
        deployment.wait_postgres()
        with HealthWatch(deployment.base_url) as health:
            deployment.start_synapse(password)
            health.wait(HEALTH_TIMEOUT)
        containers = dict(deployment.containers)
        yield f"http://{address(client, containers['synapse'])}:8008", containers
    finally:
        deployment.remove()


PROGRAM_SIDES: dict[str, dict[str, Any]] = {
    "small": {"profile": "small", "proxy": {"enabled": False}},
    "medium": {"profile": "medium", "tls": "off", "synapse": {"workers": False}},
    "workers": {"profile": "medium", "tls": "off", "synapse": {"workers": True}},
}
"""Each side of the program: its stack settings over `dev`'s."""


@contextmanager
def program_side(client: docker.DockerClient, side: str, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, str]]]:
    """The program's stack `dev` with the side's settings, applied by the end-to-end harness."""
    prefix = f"{args.prefix}-{side}"
    side_settings = deep_merge(PROGRAM_SIDES["small"], args.lever) if side == "lever" else PROGRAM_SIDES[side]
    settings = deep_merge(
        {
            "voicegrow": {"enabled": False},
            "backup": {"enabled": False},
            "healer": {"enabled": False},
            "synapse": {"registration": "open", "extra_config": LOAD_RATE_LIMITS, "server_name": DOMAIN, "public_host": MATRIX_HOST},
        },
        side_settings,
    )
    applied = apply_program(ROOT, "dev", local_overrides(prefix, args.port, settings))
    try:
        running = {
            name.removeprefix(f"{prefix}-"): container_id
            for name, container_id in applied.containers.items()
            if client.api.inspect_container(container_id)["State"]["Running"]
        }
        if "proxy" in running:
            with resolve_to(DOMAIN, address(client, running["proxy"])):
                yield f"http://{MATRIX_HOST}", running
        else:
            yield f"http://{address(client, running['synapse'])}:8008", running
    finally:
        applied.destroy()


def run_side(client: docker.DockerClient, side: str, mode: Mode, args: argparse.Namespace) -> SideRun:
    log(f"{side}: deploying")
    deployed = guide_side(client, args) if side == "guide" else program_side(client, side, args)
    with deployed as (base_url, containers):
        log(f"{side}: {len(containers)} containers running, pinned to cores {_cores(mode.server_cores)}")
        return measure(client, side, base_url, containers, mode, args)


# --- the report -----------------------------------------------------------------------------------


def _cores(cores: set[int]) -> str:
    return cpu_list(cores) or "none"


ROWS: list[tuple[str, Callable[[LoadFigures], float], str, int]] = [
    ("delivery p50", lambda figures: figures.delivery_p50, " s", 2),
    ("delivery p95", lambda figures: figures.delivery_p95, " s", 2),
    ("delivery max", lambda figures: figures.delivery_max, " s", 2),
    ("send request p95", lambda figures: figures.send_p95, " s", 2),
    ("messages/s delivered", lambda figures: figures.messages_per_second, "", 1),
    ("CPU-s per 1,000: homeserver", lambda figures: figures.cpu_per_1000(homeserver), "", 1),
    ("CPU-s per 1,000: all containers", lambda figures: figures.cpu_per_1000(), "", 1),
    ("memory peak: homeserver", lambda figures: sum(mb for role, mb in figures.memory_peak_mb.items() if homeserver(role)), " MB", 0),
]


def _cells(a: float, b: float, unit: str, digits: int) -> str:
    ratio = f"{b / a:.2f}x" if math.isfinite(a) and math.isfinite(b) and a else ""
    first, second = ("n/a" if not math.isfinite(value) else f"{value:.{digits}f}{unit}" for value in (a, b))
    return f"{first:>12}{second:>12}  {ratio}"


def report(mode_name: str, args: argparse.Namespace, rounds: dict[str, list[SideRun]], client_cores: set[int]) -> str:
    mode = MODES[mode_name]
    first, second = mode.sides
    quoted = bool(client_cores) and not client_cores & mode.server_cores
    lines = [
        "",
        f"Synapse {mode_name}, {first} against {second}: servers pinned to cores {_cores(mode.server_cores)}, "
        f"the load client to cores {_cores(client_cores)} of {os.cpu_count()}"
        + ("" if quoted else " -- NOT QUOTED: the client shares the servers' cores"),
        f"  each user sends {args.messages} messages, one every {args.interval:g} s; {args.readers} readers time the "
        "deliveries; every user long-polls /sync",
        f"  {args.rounds} rounds, the sides' order reversed every round; medians over the rounds, every round's p95 and CPU below",
        "",
        f"  {'at rest':<32}{first:>12}{second:>12}  ratio",
        f"  {'CPU, all containers':<32}"
        + _cells(*(finite_median([run.idle_cpu_percent for run in rounds[side]]) for side in mode.sides), " %", 1),
    ]
    for load in args.loads:
        lines += ["", f"  {load} ({load.users / args.interval:.3g} msg/s offered)", f"  {'':<32}{first:>12}{second:>12}  ratio"]
        for name, figure, unit, digits in ROWS:
            a, b = (finite_median([figure(run.loads[load]) for run in rounds[side]]) for side in mode.sides)
            lines.append(f"  {name:<32}{_cells(a, b, unit, digits)}")
        for side in mode.sides:
            runs = [run.loads[load] for run in rounds[side]]
            per_round = ", ".join(
                f"{figures.delivery_p95:.2f} s / {figures.cpu_per_1000(homeserver):.1f} (steal {figures.host_steal_percent:.1f} %)" for figures in runs
            )
            cpu = {role: finite_median([figures.cpu_seconds.get(role, math.nan) for figures in runs]) for role in runs[0].cpu_seconds}
            busiest = ", ".join(f"{role} {seconds:.1f}" for role, seconds in sorted(cpu.items(), key=lambda item: -item[1])[:4])
            lines.append(f"    {side}: p95 / CPU-s per 1,000 (host steal) per round: {per_round}; CPU-s by container: {busiest}")
            lost = sum(figures.undelivered + figures.send_errors for figures in runs)
            if lost:
                lines.append(f"    {side}: {lost} messages undelivered or not sent over the rounds")
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "mode", choices=list(MODES), help="one-core: the guide against small; two-cores: medium without and with workers; lever: small without and with --lever"
    )
    parser.add_argument("--loads", default="50x1,60x20", help="USERSxROOMS, comma separated (default 50x1,60x20: one hot room, many small ones)")
    parser.add_argument("--messages", type=int, default=4, help="messages per user (default 4)")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between one user's messages (default 3)")
    parser.add_argument("--readers", type=int, default=2, help="users in every room that only /sync and time the deliveries (default 2)")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait for deliveries after the last send")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, at least 2 (default 2)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds each side is measured at rest before the loads (default 30)")
    parser.add_argument("--lever", type=json.loads, default={}, help="lever mode: stack settings (JSON) merged over small's")
    parser.add_argument("--profile", type=Path, help="directory: py-spy records Synapse's main container during each load's messages")
    parser.add_argument("--prefix", default="bench-fair")
    parser.add_argument("--port", type=int, default=18540)
    args = parser.parse_args(argv)
    try:
        args.loads = [Load.parse(text) for text in args.loads.split(",") if text.strip()]
    except ValueError:
        parser.error("--loads: USERSxROOMS, e.g. 50x1,60x20")
    if not args.loads or any(load.users < load.rooms or load.rooms < 1 for load in args.loads):
        parser.error("--loads: every room needs at least one user")
    if min(args.messages, args.readers) < 1 or min(args.interval, args.idle) <= 0:
        parser.error("messages, interval, readers and idle must be positive")
    if (args.mode == "lever") != bool(args.lever):
        parser.error("--lever: required in lever mode, and only there")
    if args.profile:
        if not shutil.which("py-spy"):
            parser.error("--profile: py-spy is not on PATH (pip install py-spy)")
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.rounds < 2:
        parser.error("--rounds: at least 2, so that each side runs first once")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = MODES[args.mode]
    # Before any thread starts: every thread of this process inherits the client's cores.
    client_cores = set(range(os.cpu_count() or 1)) - mode.server_cores
    if client_cores:
        os.sched_setaffinity(0, client_cores)
    reason = engine_unavailable_reason()
    if reason:
        sys.exit(reason)
    client = docker.from_env(timeout=300, max_pool_size=32)
    preflight(client)
    sequence = [side for number in range(args.rounds) for side in (mode.sides if number % 2 == 0 else mode.sides[::-1])]
    rounds = run_in_order(
        client,
        [f"{args.prefix}-{side}" for side in ("guide", "lever", *PROGRAM_SIDES)],
        sequence,
        lambda side: run_side(client, side, mode, args),
    )
    if rounds is None:
        return 1
    print(report(args.mode, args, rounds, client_cores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
