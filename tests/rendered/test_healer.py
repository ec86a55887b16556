"""The healer's choice of containers to restart, as the engine lists and inspects unhealthy ones,
and its backoff: a container that recovers slowly is not killed again and again."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.program import ROOT
from tests.rendered.debian_tools import ToolUnavailable, debian_tool

sys.path.insert(0, str(ROOT / "components" / "images" / "backup"))

from healer import Backoff, metrics_text, to_restart, write_atomically  # noqa: E402  (the image's module, imported as the image imports it)

pytestmark = pytest.mark.rendered

PREFIX = "selfhosted-prod"


def _listed(*names: str) -> list[dict]:
    return [{"Id": f"id-{name}", "Names": [f"/{name}"]} for name in names]


def test_an_unhealthy_container_of_the_stack_is_restarted() -> None:
    assert to_restart(_listed("selfhosted-prod-synapse"), PREFIX, frozenset()) == [
        ("id-selfhosted-prod-synapse", "selfhosted-prod-synapse")
    ]


def test_a_container_of_another_stack_with_the_same_label_is_left_alone() -> None:
    assert to_restart(_listed("selfhosted-prod2-synapse", "other-prod-synapse"), PREFIX, frozenset()) == []


def test_an_excluded_container_is_left_alone() -> None:
    listed = _listed("selfhosted-prod-backup", "selfhosted-prod-voicegrow-mysql")
    assert [name for _, name in to_restart(listed, PREFIX, frozenset({"selfhosted-prod-backup"}))] == [
        "selfhosted-prod-voicegrow-mysql"
    ]


STARTED = "2026-12-07T10:00:00.123456789Z"
START = 1_796_637_600.123456  # STARTED in seconds since the epoch
SECOND = 1_000_000_000


def _inspected(start_period: int = 30, interval: int = 10, retries: int = 3) -> dict:
    check = {"StartPeriod": start_period * SECOND, "Interval": interval * SECOND, "Retries": retries}
    return {"Name": "/selfhosted-prod-synapse", "State": {"StartedAt": STARTED}, "Config": {"Healthcheck": check}}


def _backoff() -> Backoff:
    return Backoff(base_seconds=60, max_restarts=3, window_seconds=3600)


def test_a_container_inside_its_start_period_and_retries_is_not_restarted() -> None:
    # Its checks allow 30 s + 3 x 10 s after the start.
    backoff = _backoff()
    assert "its checks allow 60 s" in (backoff.decide("id", _inspected(), START + 59) or "")
    assert backoff.decide("id", _inspected(), START + 61) is None


def test_each_restart_waits_twice_as_long_as_the_one_before() -> None:
    backoff, inspected = _backoff(), _inspected(start_period=0, interval=1, retries=1)
    backoff.restarted("id", START + 10)
    assert "waiting 60 s" in (backoff.decide("id", inspected, START + 69) or "")
    assert backoff.decide("id", inspected, START + 70) is None
    backoff.restarted("id", START + 70)
    assert "waiting 120 s" in (backoff.decide("id", inspected, START + 189) or "")
    assert backoff.decide("id", inspected, START + 190) is None


def test_the_healer_gives_up_after_the_most_restarts_in_its_window_until_the_container_is_healthy() -> None:
    backoff, inspected = _backoff(), _inspected(start_period=0, interval=1, retries=1)
    for minutes in (0, 10, 20):
        backoff.restarted("id", START + 60 * minutes)
    assert "giving up" in (backoff.decide("id", inspected, START + 1800) or "")
    assert backoff.given_up == {"id": "selfhosted-prod-synapse"}
    assert backoff.decide("id", inspected, START + 3000) == "given up"
    backoff.healthy_again(set())
    assert backoff.given_up == {}


def test_restarts_older_than_the_window_no_longer_count() -> None:
    backoff, inspected = _backoff(), _inspected(start_period=0, interval=1, retries=1)
    for minutes in (0, 10, 20):
        backoff.restarted("id", START + 60 * minutes)
    assert backoff.decide("id", inspected, START + 3600 + 60 * 21) is None


def test_the_healers_metrics_name_what_it_gave_up_on_and_promtool_reads_them() -> None:
    try:
        promtool = debian_tool("promtool")
    except ToolUnavailable as error:
        pytest.skip(str(error))
    restarts = {"selfhosted-prod-synapse": 5, "selfhosted-prod-voicegrow-mysql": 1}
    text = metrics_text(["selfhosted-prod-synapse"], restarts, 1_765_000_000.5)
    result = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'healer_gave_up{container="selfhosted-prod-synapse"} 1\n' in text
    assert 'healer_gave_up{container="selfhosted-prod-voicegrow-mysql"}' not in text
    assert 'healer_restarts_total{container="selfhosted-prod-voicegrow-mysql"} 1\n' in text
    assert "healer_last_run_timestamp_seconds 1765000000.5\n" in text


def test_the_metrics_file_is_replaced_whole_and_readable_by_the_collector(tmp_path: Path) -> None:
    target = tmp_path / "healer.prom"
    write_atomically(target, "first\n")
    write_atomically(target, "second\n")
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    # Only files named *.prom are read: nothing else is left beside it.
    assert [path.name for path in tmp_path.iterdir()] == ["healer.prom"]
