"""Evaluating a stack twice declares identical resources: a no-op `pulumi up` changes nothing."""

from __future__ import annotations

import json

import pytest

from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

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


def _known_differences(preview: object, up: object, path: str) -> list[str]:
    """Where a value known at preview differs from the one `pulumi up` declares."""
    if preview == UNKNOWN or isinstance(preview, Unknown):
        return []
    if isinstance(preview, dict) and isinstance(up, dict):
        if preview.keys() != up.keys():
            return [f"{path}: keys {sorted(preview)} at preview, {sorted(up)} at up"]
        return [d for key in preview for d in _known_differences(preview[key], up[key], f"{path}.{key}")]
    if isinstance(preview, list) and isinstance(up, list):
        if len(preview) != len(up):
            return [f"{path}: {len(preview)} items at preview, {len(up)} at up"]
        return [d for index, (a, b) in enumerate(zip(preview, up)) for d in _known_differences(a, b, f"{path}[{index}]")]
    return [] if preview == up else [f"{path}: {preview!r} at preview, {up!r} at up"]


@pytest.mark.parametrize("stack", STACKS)
def test_preview_declares_what_up_declares(stack: str) -> None:
    # What every up-mode test asserts about an input holds at preview wherever preview knows it.
    declared = {}
    for preview in (True, False):
        mocks = RecordingMocks()
        run_program(mocks, stack, preview=preview)
        declared[preview] = {(r.type, r.name): r.inputs for r in mocks.declared}
    assert declared[True].keys() == declared[False].keys()
    differences = [d for key, inputs in declared[True].items() for d in _known_differences(inputs, declared[False][key], key[1])]
    assert differences == []
