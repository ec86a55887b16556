"""Docker's bridge isolation has holes while an engine on the host creates or removes a network.

On every network it creates, libnetwork makes sure FORWARD's jumps to DOCKER-USER and
DOCKER-ISOLATION-STAGE-1 come first by deleting each and inserting it again (EnsureJumpRule);
between the two, a connection from one bridge network to another goes through. Measured with
Docker 20.10 here: while a loop created and removed networks, 260 of 1,452 connection attempts from
one network to a server on another got through; without the loop, none of 397. Every engine of
the host shares its FORWARD chain, so the tests' two engines open these holes for each other.

A test that changes networks holds `changing_networks()`; changes may overlap one another. A test
that checks isolation holds `networks_steady()`, which waits for the changes under way and holds
new ones back, so that it sees what the stack's networks give and not another test's change.
Both end-to-end test processes of a clone (the tests' engine and the Swarm engine) share the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

CACHE = Path(__file__).resolve().parents[2] / ".cache"
LOCK = CACHE / "network-changes.lock"
TURNSTILE = CACHE / "network-changes.turnstile"
"""Held by a waiting `networks_steady()`, and passed through by every change before it starts:
changes that keep overlapping would otherwise keep the shared lock forever."""


WAIT_SECONDS = 600
"""Holders keep the lock for seconds (the longest, a check of 200 connections under churn, for
about ten): a wait this long means a holder is stuck, and the error names it."""
POLL_SECONDS = 0.05


def holders(path: Path) -> list[str]:
    """The processes holding a lock on `path` (from /proc/locks), with their command lines."""
    inode = path.stat().st_ino
    found = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a waiter's line has "->" after the number.
        fields = [field for field in fields if field != "->"]
        if fields[1] != "FLOCK" or int(fields[5].rsplit(":", 1)[1]) != inode:
            continue
        pid = fields[4]
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            command = "?"
        found.append(f"pid {pid} ({fields[3].lower()}): {command}")
    return found


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{path.name}: not free after {WAIT_SECONDS} s (this is pid {os.getpid()}); "
                        f"locks on it: {holders(path)}"
                    ) from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def changing_networks() -> Iterator[None]:
    """Held while creating or removing a network, or joining or leaving a swarm (which does both)."""
    with _locked(TURNSTILE, fcntl.LOCK_EX):
        pass
    with _locked(LOCK, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def networks_steady() -> Iterator[None]:
    """Held while checking what one network can reach on another: no network changes meanwhile."""
    with _locked(TURNSTILE, fcntl.LOCK_EX), _locked(LOCK, fcntl.LOCK_EX):
        yield
