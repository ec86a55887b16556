"""The `evaluate` fixture's cache: a test gets the same declarations, in copies of its own."""

from __future__ import annotations

import copy

from tests.unit.conftest import Evaluate, Registration


def test_an_evaluation_again_declares_the_same_in_a_copy_a_test_may_change(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    first = evaluate("dev")
    declared = copy.deepcopy([(resource.type, resource.name, resource.inputs) for resource in first.mocks.declared])
    first_registrations = dict(registrations)
    first.mocks.declared[0].inputs.clear()
    first.mocks.declared.pop()

    again = evaluate("dev")
    assert [(resource.type, resource.name, resource.inputs) for resource in again.mocks.declared] == declared
    assert registrations == first_registrations and registrations
