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


@dataclass(frozen=True)
class Registration:
    """What the engine receives for one resource beyond its inputs (mocks do not see it)."""

    dependencies: frozenset[str]
    """Logical names it depends on: explicit `depends_on` and inputs taken from other resources."""
    delete_before_replace: bool
    replace_on_changes: tuple[str, ...]


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> dict[str, Registration]:
    """Filled during an evaluation: each resource's logical name -> its registration.

    The engine orders creation by the dependencies and plans replacements by the options;
    `new_resource` gets neither, so the monitor is watched.
    """
    recorded: dict[str, Registration] = {}
    register = MockMonitor.RegisterResource

    def watched(monitor: MockMonitor, request: Any) -> Any:
        recorded[request.name] = Registration(
            dependencies=frozenset(urn.rsplit("::", 1)[-1] for urn in request.dependencies),
            delete_before_replace=request.deleteBeforeReplace,
            replace_on_changes=tuple(request.replaceOnChanges),
        )
        return register(monitor, request)

    monkeypatch.setattr(MockMonitor, "RegisterResource", watched)
    return recorded
