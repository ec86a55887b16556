"""Every profile's default stack fits the host the profile is named for, in every environment.

The stack files of the four environments, with the profile set and VoiceGrow off (its default)
on `host`, and on (the environment's replicas) on `voicegrow_host`: the preflight's own memory
check passes there, without asking for more swap than the profile names, and no CPU cap asks
for more cores than the host has (Docker refuses those).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config.profiles import PROFILES, HostSize
from preflight.checks import memory
from preflight.host import Memory
from preflight.stack import containers, read_settings
from tests.program import STACKS
from tests.unit.test_preflight_stack import stack_dir

CASES = [
    pytest.param(stack, profile, voicegrow, id=f"{stack}-{profile}-{'voicegrow' if voicegrow else 'synapse'}")
    for stack in STACKS
    for profile in PROFILES
    for voicegrow in (False, True)
]
SERVER_IMAGE = "registry.example.com/voicegrow/server:1.0.0"


@pytest.mark.parametrize(("stack", "profile", "voicegrow"), CASES)
def test_the_default_stack_fits_the_host_its_profile_names(tmp_path: Path, stack: str, profile: str, voicegrow: bool) -> None:
    overrides = {"profile": profile, "voicegrow": {"enabled": voicegrow, "server_image": SERVER_IMAGE}}
    settings = read_settings(stack_dir(tmp_path, stack, overrides), stack)
    host: HostSize = PROFILES[profile].voicegrow_host if voicegrow else PROFILES[profile].host
    stack_containers = containers(settings)
    finding = memory(stack, stack_containers, Memory(total_mb=host.memory_mb, swap_mb=host.swap_mb))
    assert finding.level == "ok", finding.message
    caps = {name: limits.cpus for name, limits in stack_containers.items() if limits.cpus is not None}
    assert all(cpus <= host.vcpus for cpus in caps.values()), caps


@pytest.mark.parametrize("profile", PROFILES)
def test_a_profile_names_no_larger_host_for_synapse_alone_than_with_voicegrow(profile: str) -> None:
    alone, beside = PROFILES[profile].host, PROFILES[profile].voicegrow_host
    assert (alone.vcpus, alone.memory_mb) <= (beside.vcpus, beside.memory_mb)


def test_the_small_profile_is_the_guides_2_gb_vps_as_its_kernel_reports_it() -> None:
    # A 2 GB VPS reports about 1967 MB.
    assert PROFILES["small"].host == HostSize(vcpus=1, memory_mb=1966, swap_mb=2048)
