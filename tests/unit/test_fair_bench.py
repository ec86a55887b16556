"""The fair bench's accounting: what it counts as CPU per delivered message, and when it refuses to quote."""

from __future__ import annotations

import argparse
import math
import os
import time

import pytest

from benchmarks.synapse_fair import (
    Load,
    LoadFigures,
    SideRun,
    cgroup_cpu_seconds,
    homeserver,
    host_ticks,
    parse_args,
    report,
    where_the_time_goes,
)


def _figures(delivered: int, cpu_seconds: dict[str, float]) -> LoadFigures:
    return LoadFigures(1.0, 2.0, 3.0, 0.5, 10.0, delivered, 0, 0, cpu_seconds, {"synapse": 100.0})


def test_cpu_per_1000_counts_the_homeserver_or_every_container() -> None:
    figures = _figures(200, {"synapse": 3.0, "synapse-postgres": 1.0, "synapse-sync1": 0.5, "synapse-wellknown": 0.2, "monitoring-prometheus": 0.3})
    assert figures.cpu_per_1000(homeserver) == pytest.approx(4.5 / 200 * 1000)
    assert figures.cpu_per_1000() == pytest.approx(5.0 / 200 * 1000)
    assert math.isnan(_figures(0, {"synapse": 1.0}).cpu_per_1000())


def test_the_guides_containers_are_the_homeserver_too() -> None:
    assert homeserver("synapse") and homeserver("postgres")
    assert not homeserver("proxy") and not homeserver("synapse-wellknown")


def test_loads_parse_users_and_rooms() -> None:
    assert Load.parse("60x20") == Load(60, 20) and str(Load(60, 20)) == "60 users in 20 rooms"
    assert Load.parse("50") == Load(50, 1)
    with pytest.raises(SystemExit):
        parse_args(["one-core", "--loads", "5x10"])
    with pytest.raises(SystemExit):
        parse_args(["one-core", "--rounds", "1"])


def test_a_cgroups_cpu_counter_grows_with_the_work_done_in_it() -> None:
    before = cgroup_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert cgroup_cpu_seconds(os.getpid()) - before >= 0.25


@pytest.mark.parametrize(("client_cores", "quoted"), [({1}, True), ({0, 1}, False), (set(), False)])
def test_figures_are_marked_not_quoted_when_the_client_shares_the_servers_cores(client_cores: set[int], quoted: bool) -> None:
    args = parse_args(["one-core", "--loads", "50x1"])
    load = args.loads[0]
    rounds = {side: [SideRun(idle, {load: _figures(100, {"synapse": 1.0})})] * 2 for side, idle in (("guide", 1.0), ("small", 3.0))}
    text = report("one-core", argparse.Namespace(**vars(args)), rounds, client_cores)
    assert ("NOT QUOTED" not in text) == quoted
    assert "CPU-s per 1,000: homeserver" in text and "10.0" in text
    assert "CPU, all containers" in text and "3.00x" in text


def test_where_the_time_goes_sums_the_innermost_frames_by_package_and_function(tmp_path) -> None:
    collapsed = tmp_path / "profile.txt"
    collapsed.write_text(
        "process 1:synapse;run (twisted/internet/base.py:1);handle (synapse/rest/sync.py:10);encode (json/encoder.py:5) 30\n"
        "process 1:synapse;run (twisted/internet/base.py:1);handle (synapse/rest/sync.py:12) 10\n"
        "process 1:synapse;run (twisted/internet/base.py:1);persist (synapse/storage/events.py:3) 50\n"
        "process 1:synapse;run (twisted/internet/base.py:1);persist (synapse/storage/events.py:9) 10\n"
        'process 2:"python -m synapse" 7\n'
    )
    profile = where_the_time_goes(collapsed)
    assert profile.samples == 100
    assert dict(profile.packages) == {"synapse/storage": 0.6, "json": 0.3, "synapse/rest": 0.1}
    assert dict(profile.functions) == {"persist (events.py)": 0.6, "encode (encoder.py)": 0.3, "handle (sync.py)": 0.1}
    assert "by package: synapse/storage 60%, json 30%" in str(profile)


def test_the_hosts_ticks_grow_and_steal_is_a_part_of_them() -> None:
    stolen, total = host_ticks()
    time.sleep(0.2)
    stolen_after, total_after = host_ticks()
    assert 0 <= stolen <= stolen_after <= total_after and total_after > total
