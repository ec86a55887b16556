"""pytest helpers for end-to-end tests: skip without an engine, deploy with guaranteed teardown.

In a conftest.py:  `from tests.e2e.harness.fixtures import deploy  # noqa: F401`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .apply import AppliedStack, ApplyError, apply_program
from .engine import engine_unavailable_reason

Deploy = Callable[..., AppliedStack]


def require_engine() -> None:
    """Skip the calling test (with the reason) when no Docker engine answers."""
    reason = engine_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def deploy() -> Iterator[Deploy]:
    """`deploy(program_dir, stack, config_overrides=None, keep_volumes=False, secrets=None)`:
    apply a stack; everything it (and any `reapply()` of it) created is destroyed after the
    test, pass or fail."""
    require_engine()
    applied: list[AppliedStack] = []

    def _deploy(
        program_dir: Path | str,
        stack: str,
        config_overrides: Mapping[str, Any] | None = None,
        keep_volumes: bool = False,
        secrets: Mapping[str, Any] | None = None,
    ) -> AppliedStack:
        stack_ = apply_program(program_dir, stack, config_overrides, keep_volumes, secrets=secrets)
        applied.append(stack_)
        return stack_

    yield _deploy
    failures = []
    for stack_ in reversed(applied):
        try:
            stack_.destroy()
        except ApplyError as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("teardown failed:\n" + "\n".join(failures))
