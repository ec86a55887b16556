"""The role registry (config/roles.py) is the one list of roles: the profiles, the images and the
containers the program declares all agree with it."""

from __future__ import annotations

import pytest

from config.models import ImageSettings
from config.profiles import PROFILES
from config.roles import ROLES
from preflight.stack import containers, read_settings
from tests.program import ROOT, STACKS, run_program
from tests.unit.mocks import RecordingMocks

CONTAINER = "docker:index/container:Container"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_sizes_exactly_the_registrys_roles(profile: str) -> None:
    assert sorted(PROFILES[profile].limits) == sorted(ROLES)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_roles_cpu_weight_is_the_registrys_in_every_profile(profile: str) -> None:
    assert {name: limits.cpu_weight for name, limits in PROFILES[profile].limits.items()} == {
        name: role.cpu_weight for name, role in ROLES.items()
    }


def test_every_image_a_role_names_is_an_image_setting() -> None:
    settings = set(ImageSettings.model_fields) - ImageSettings.NOT_IMAGES
    assert {role.image for role in ROLES.values() if role.image is not None} <= settings


def test_no_two_roles_of_a_component_share_a_label() -> None:
    labels = [(role.component, role.role_label) for role in ROLES.values()]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_runs_the_roles_the_settings_say_with_the_registrys_labels_and_stop_grace(stack: str) -> None:
    settings = read_settings(ROOT, stack)
    mocks = RecordingMocks()
    run_program(mocks, stack, preview=False)
    services = [c for c in mocks.of_type(CONTAINER) if c.value("restart") == "unless-stopped"]
    declared = {}
    for container in services:
        labels = {label["label"].rsplit(".", 1)[1]: label["value"] for label in container.value("labels")}
        declared[(labels["component"], labels["role"])] = container.value("destroyGraceSeconds")
    expected = {
        (role.component, role.role_label): role.stop_grace_seconds for role in ROLES.values() if settings.runs(role)
    }
    assert declared == expected
    # The preflight counts the same roles: one container per role, a worker or replica each.
    assert len(containers(settings)) == len(services)
