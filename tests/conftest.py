"""Settings shared by every layer of tests: a test that runs past its time limit fails and says where.

pytest-timeout (limits in pytest.ini) fails such a test from SIGALRM; its own report of the other
threads goes to a terminal that pytest-xdist's workers do not show, and the harness applies
resources in threads, so the failure itself carries every thread's stack here.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from types import FrameType

import pytest


def _thread_stacks() -> str:
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"--- thread {names.get(ident, ident)}\n{''.join(traceback.format_stack(frame))}"
        for ident, frame in sys._current_frames().items()
    )


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: object) -> bool | None:
    if getattr(settings, "method", None) != "signal" or threading.current_thread() is not threading.main_thread():
        return None  # pytest-timeout's own timer
    limit = getattr(settings, "timeout")

    def expire(signum: int, frame: FrameType | None) -> None:
        pytest.fail(f"Timeout: {item.nodeid} ran longer than {limit:g} s. Where every thread was:\n{_thread_stacks()}")

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined] - pytest-timeout's cancel hook calls it
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    return True
