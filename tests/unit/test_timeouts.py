"""A test that hangs fails within its limit, and its failure shows where every thread was."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HANGING = '''
import threading, time

def test_hangs():
    threading.Thread(target=time.sleep, args=(60,), name="side-thread", daemon=True).start()
    time.sleep(60)
'''


def test_a_hanging_test_fails_with_every_threads_stack(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).resolve().parents[1] / "conftest.py").read_text())
    pytester.makepyfile(test_hanging=HANGING)
    result = pytester.runpytest_subprocess("-p", "timeout", "-o", "timeout=2", "-o", "timeout_method=signal")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "ran longer than 2 s" in output
    assert "--- thread side-thread" in output and "--- thread MainThread" in output
