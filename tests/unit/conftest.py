"""Fixtures that evaluate the program for a stack under recording mocks."""

from __future__ import annotations

import copy
import json
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
    registrations: dict[str, Registration]

    def container(self, name: str) -> Any:
        """The container declared with this logical name."""
        return self.mocks.named(name, "docker:index/container:Container")

    def output(self, name: str) -> tuple[Any, bool]:
        """An exported value, resolved, and whether it is marked secret."""
        output = pulumi.Output.from_input(self.outputs[name])
        return _sync_await(output.future()), _sync_await(output.is_secret())


Evaluate = Callable[..., Evaluation]


@dataclass(frozen=True)
class Registration:
    """What the engine receives for one resource beyond its inputs (mocks do not see it)."""

    dependencies: frozenset[str]
    """Logical names it depends on: explicit `depends_on` and inputs taken from other resources."""
    delete_before_replace: bool
    replace_on_changes: tuple[str, ...]


@pytest.fixture
def evaluate(request: pytest.FixtureRequest, registrations: dict[str, Registration]) -> Evaluate:
    """Evaluate the program: `evaluate(stack, preview=False, overrides=None, secrets=None)`.

    The program is a function of its stack file, overrides and secrets: an evaluation with the
    same ones is taken from earlier tests of this process, unless the test patches something
    (its `monkeypatch` could change what the program declares). `registrations` holds those of
    the last evaluation.
    """
    patched = "monkeypatch" in request.fixturenames

    def run(
        stack: str,
        preview: bool = False,
        overrides: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> Evaluation:
        key = json.dumps([stack, preview, overrides, secrets], sort_keys=True, default=str)
        evaluation = None if patched else _EVALUATIONS.get(key)
        if evaluation is None:
            evaluation = _evaluated(stack, preview, overrides, secrets)
            if not patched:
                _EVALUATIONS[key] = evaluation
        registrations.clear()
        registrations.update(evaluation.registrations)
        # Each test gets its own copies of what it may change.
        return Evaluation(mocks=copy.deepcopy(evaluation.mocks), outputs=dict(evaluation.outputs), registrations=dict(evaluation.registrations))

    return run


@pytest.fixture
def registrations() -> dict[str, Registration]:
    """Each resource's logical name -> its registration, in the last evaluation of the test.

    The engine orders creation by the dependencies and plans replacements by the options;
    `new_resource` gets neither, so the monitor is watched.
    """
    return {}


_EVALUATIONS: dict[str, Evaluation] = {}


def _evaluated(
    stack: str, preview: bool, overrides: dict[str, Any] | None, secrets: dict[str, str] | None
) -> Evaluation:
    recorded: dict[str, Registration] = {}
    register = MockMonitor.RegisterResource

    def watched(monitor: MockMonitor, request: Any) -> Any:
        recorded[request.name] = Registration(
            dependencies=frozenset(urn.rsplit("::", 1)[-1] for urn in request.dependencies),
            delete_before_replace=request.deleteBeforeReplace,
            replace_on_changes=tuple(request.replaceOnChanges),
        )
        return register(monitor, request)

    MockMonitor.RegisterResource = watched  # type: ignore[method-assign]
    try:
        mocks = RecordingMocks()
        outputs = run_program(mocks, stack, preview, overrides, secrets)
    finally:
        MockMonitor.RegisterResource = register  # type: ignore[method-assign]
    return Evaluation(mocks=mocks, outputs=outputs, registrations=recorded)
