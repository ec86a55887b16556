"""The healer's choice of containers to restart, as the engine lists unhealthy ones."""

from __future__ import annotations

import sys

import pytest

from tests.program import ROOT

sys.path.insert(0, str(ROOT / "components" / "images" / "backup"))

from healer import to_restart  # noqa: E402  (the image's module, imported as the image imports it)

pytestmark = pytest.mark.rendered

PREFIX = "selfhosted-prod"


def _listed(*names: str) -> list[dict]:
    return [{"Id": f"id-{name}", "Names": [f"/{name}"]} for name in names]


def test_an_unhealthy_container_of_the_stack_is_restarted() -> None:
    assert to_restart(_listed("selfhosted-prod-synapse"), PREFIX, frozenset()) == [
        ("id-selfhosted-prod-synapse", "selfhosted-prod-synapse")
    ]


def test_a_container_of_another_stack_with_the_same_label_is_left_alone() -> None:
    assert to_restart(_listed("selfhosted-prod2-synapse", "other-prod-synapse"), PREFIX, frozenset()) == []


def test_an_excluded_container_is_left_alone() -> None:
    listed = _listed("selfhosted-prod-backup", "selfhosted-prod-voicegrow-mysql")
    assert [name for _, name in to_restart(listed, PREFIX, frozenset({"selfhosted-prod-backup"}))] == [
        "selfhosted-prod-voicegrow-mysql"
    ]
