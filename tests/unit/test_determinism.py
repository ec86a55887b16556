"""Evaluating a stack twice declares identical resources: a no-op `pulumi up` changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.program import STACKS, run_program
from tests.unit.mocks import RecordingMocks


@pytest.mark.parametrize("stack", STACKS)
def test_evaluating_a_stack_twice_declares_identical_resources(stack: str) -> None:
    declared = []
    for _ in range(2):
        mocks = RecordingMocks()
        run_program(mocks, stack, preview=False)
        declared.append(sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True)) for r in mocks.declared))
    assert declared[0] == declared[1]
