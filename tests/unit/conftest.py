"""Fixtures that evaluate the program for a stack under recording mocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor
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


@pytest.fixture
def dependencies(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """Filled during an evaluation: each resource's logical name -> the names it depends on.

    The engine creates a resource only after these (explicit `depends_on` and inputs taken
    from other resources); mocks do not pass them to `new_resource`, so the monitor is watched.
    """
    recorded: dict[str, set[str]] = {}
    register = MockMonitor.RegisterResource

    def watched(monitor: MockMonitor, request: Any) -> Any:
        recorded[request.name] = {urn.rsplit("::", 1)[-1] for urn in request.dependencies}
        return register(monitor, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", watched)
    return recorded
