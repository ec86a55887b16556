"""The preflight reads a stack file as the program does, and counts exactly the containers it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError
from tests.stack_config import deep_merge
from preflight.stack import containers, read_settings
from tests.program import ROOT, STACKS
from tests.unit.conftest import Evaluate

VARIANTS = [
    *[pytest.param(stack, {}, id=stack) for stack in STACKS],
    pytest.param("dev", {"backup": {"enabled": True}}, id="dev-backup"),
    pytest.param("test", {"tls": "acme", "proxy": {"acme_email": "ops@example.com"}}, id="test-acme"),
    pytest.param("staging", {"healer": {"enabled": False}}, id="staging-no-healer"),
    pytest.param("prod", {"voicegrow": {"replicas": 3}}, id="prod-3-replicas"),
]


def stack_dir(tmp_path: Path, stack: str, overrides: dict[str, Any]) -> Path:
    """The program's project file and a stack file with `overrides` merged into its config."""
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    for key, value in overrides.items():
        name = f"selfhosted:{key}"
        document["config"][name] = deep_merge(document["config"].get(name), value)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


@pytest.mark.parametrize(("stack", "overrides"), VARIANTS)
def test_the_preflight_counts_the_memory_of_every_container_the_program_declares(
    evaluate: Evaluate, tmp_path: Path, stack: str, overrides: dict[str, Any]
) -> None:
    # Long-running containers only: the one-time ones that prepare a service's files exit.
    declared = sorted(
        (int(container.value("memory")), int(container.value("memoryReservation")))
        for container in evaluate(stack, overrides=overrides).mocks.of_type("docker:index/container:Container")
        if container.value("mustRun") is not False
    )
    settings = read_settings(stack_dir(tmp_path, stack, overrides), stack)
    counted = sorted((limits.memory_mb, limits.reservation_mb) for limits in containers(settings).values())
    assert declared and counted == declared


def test_the_stack_file_is_read_with_its_profile() -> None:
    assert read_settings(ROOT, "prod").profile == "large"


def test_a_bad_setting_in_the_stack_file_is_reported_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: selfhosted\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  selfhosted:profile: tiny\n")
    with pytest.raises(ConfigError, match="selfhosted:profile must be one of"):
        read_settings(tmp_path, "dev")
