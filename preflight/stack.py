"""A stack's settings read straight from its stack file, and the containers they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from config import StackSettings, resolve_settings
from config.loader import OBJECT_SETTINGS, SCALAR_SETTINGS, SHORTHAND_SETTINGS
from config.profiles import PROFILES, ContainerLimits, synapse_workers
from config.roles import ROLES


def read_settings(program_dir: Path, stack: str) -> StackSettings:
    """Validated settings of `Pulumi.<stack>.yaml`, as the program would see them (secrets aside).

    Raises config.ConfigError naming every bad key, and FileNotFoundError without the stack file.
    """
    project = yaml.safe_load((program_dir / "Pulumi.yaml").read_text())["name"]
    stack_file = program_dir / f"Pulumi.{stack}.yaml"
    values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    raw: dict[str, Any] = {}
    for key in (*SCALAR_SETTINGS, *OBJECT_SETTINGS):
        value = values.get(f"{project}:{key}")
        if value is None:
            continue
        if key in SHORTHAND_SETTINGS and isinstance(value, str):
            value = {SHORTHAND_SETTINGS[key]: value}
        raw[key] = value
    return resolve_settings(project, stack, raw)


def containers(settings: StackSettings) -> dict[str, ContainerLimits]:
    """Every container the stack runs, by name suffix, with its limits (the roles it runs, see
    StackSettings.runs; a role of several containers once for each)."""
    several = {
        "synapse_redis": ["synapse-redis"],
        "synapse_worker": [f"synapse-{worker.name}" for worker in synapse_workers(PROFILES[settings.profile].synapse_workers)],
        "voicegrow_server": [f"server-{index}" for index in range(1, settings.voicegrow.replicas + 1)],
    }
    return {
        name: settings.limits(role.name)
        for role in ROLES.values()
        if settings.runs(role)
        for name in several.get(role.name, [role.name])
    }
