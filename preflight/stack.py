"""A stack's settings read straight from its stack file, and the containers they run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.monitoring import roles as monitoring_roles
from config import StackSettings, resolve_settings
from config.loader import OBJECT_SETTINGS, SCALAR_SETTINGS, SHORTHAND_SETTINGS
from config.profiles import PROFILES, ContainerLimits, synapse_workers


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
    """Every container the stack runs, by name suffix, with its limits (as __main__.py builds them)."""
    roles: list[tuple[str, str]] = []
    if settings.synapse.enabled:
        roles += [(role, role) for role in ("postgres", "synapse", "wellknown")]
        if settings.synapse.workers:
            roles.append(("synapse-redis", "synapse_redis"))
            roles += [(f"synapse-{worker.name}", "synapse_worker") for worker in synapse_workers(PROFILES[settings.profile].synapse_workers)]
    if settings.voicegrow.enabled:
        roles += [(role, role) for role in ("mysql", "redis", "minio")]
        roles += [(f"server-{index}", "voicegrow_server") for index in range(1, settings.voicegrow.replicas + 1)]
    deployed = settings.synapse.enabled or settings.voicegrow.enabled
    if settings.backup.enabled and deployed:
        roles.append(("backup", "backup"))
    if settings.healer.enabled and deployed:
        roles.append(("healer", "healer"))
    roles += [(role, role) for role in monitoring_roles(settings)]
    if settings.proxy.enabled and deployed:
        roles.append(("proxy", "proxy"))
        if settings.tls == "acme":
            roles.append(("acme", "acme"))
    return {name: settings.limits(role) for name, role in roles}
