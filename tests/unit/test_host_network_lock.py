"""The host network lock of the end-to-end tests: a stuck holder makes a waiter fail in time, naming it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests.e2e import host_networks


@pytest.fixture
def lock_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(host_networks, "CACHE", tmp_path)
    monkeypatch.setattr(host_networks, "LOCK", tmp_path / "network-changes.lock")
    monkeypatch.setattr(host_networks, "TURNSTILE", tmp_path / "network-changes.turnstile")
    monkeypatch.setattr(host_networks, "WAIT_SECONDS", 0.3)
    return tmp_path


def test_changes_overlap_but_an_isolation_check_waits_for_them_and_then_names_the_holder(lock_files: Path) -> None:
    with host_networks.changing_networks(), host_networks.changing_networks():
        with pytest.raises(TimeoutError) as raised:
            with host_networks.networks_steady():
                pass
    message = str(raised.value)
    assert "network-changes.lock: not free after 0.3 s" in message
    assert f"pid {os.getpid()} (read)" in message
    with host_networks.networks_steady():
        pass  # free again once the changes ended


def test_holders_lists_only_the_locks_on_that_file(lock_files: Path) -> None:
    mine, other = lock_files / "mine", lock_files / "other"
    with mine.open("a") as held, other.open("a") as elsewhere:
        fcntl.flock(held, fcntl.LOCK_EX)
        fcntl.flock(elsewhere, fcntl.LOCK_SH)
        assert [entry.split(":")[0] for entry in host_networks.holders(mine)] == [f"pid {os.getpid()} (write)"]
