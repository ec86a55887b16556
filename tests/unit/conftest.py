"""Fixtures that evaluate the program for a stack under recording mocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from tests.program import run_program
from tests.unit.mocks import RecordingMocks


@dataclass
class Evaluation:
    """What one evaluation of the program declared and exported."""

    mocks: RecordingMocks
    outputs: dict[str, pulumi.Output[Any]]

    def container(self, name: str) -> Any:
        """The container declared with this logical name."""
        return self.mocks.named(name, "docker:index/container:Container")

    def output(self, name: str) -> tuple[Any, bool]:
        """An exported value, resolved, and whether it is marked secret."""
        output = pulumi.Output.from_input(self.outputs[name])
        return _sync_await(output.future()), _sync_await(output.is_secret())


Evaluate = Callable[..., Evaluation]


@pytest.fixture
def evaluate() -> Evaluate:
    """Evaluate the program: `evaluate(stack, preview=False, overrides=None, secrets=None)`."""

    def run(
        stack: str,
        preview: bool = False,
        overrides: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Evaluation:
        mocks = RecordingMocks()
        outputs = run_program(mocks, stack, preview, overrides, secrets)
        return Evaluation(mocks=mocks, outputs=outputs)

    return run
