"""Per-environment defaults: what an environment means when the stack file is silent.

The values are data (environments.yaml); this module names their fields and checks the file.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from config.data_files import load_dataclass

EnvironmentName = Literal["dev", "test", "staging", "prod"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
RegistrationMode = Literal["open", "token", "closed"]
TlsMode = Literal["off", "self-signed", "files", "acme"]
Monitoring = Literal["basic", "full"]


@dataclass(frozen=True)
class EnvironmentDefaults:
    """What an environment turns on when the stack file does not say otherwise."""

    debug: bool
    log_level: LogLevel
    server_replicas: int
    tls: TlsMode
    backup_schedule: str | None
    backup_part_schedules: Mapping[str, str]
    """Parts backed up on a schedule of their own instead of `backup_schedule`."""
    backup_retention: Mapping[str, tuple[int, int]]
    """Each part's (keep_days, keep_count)."""
    monitoring: Monitoring
    metrics_retention: str
    log_retention: str
    registration: RegistrationMode
    protect_data: bool


ENVIRONMENTS_FILE = Path(__file__).with_name("environments.yaml")


def load_environments(path: Path = ENVIRONMENTS_FILE) -> dict[str, EnvironmentDefaults]:
    """Each environment's defaults from the data file, checked: every environment, every field, nothing else."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = set(typing.get_args(EnvironmentName))
    if set(document) != names:
        raise ValueError(f"{path.name} must define exactly the environments {sorted(names)}, got {sorted(document)}")
    return {name: load_dataclass(EnvironmentDefaults, values, f"{path.name}: {name}") for name, values in document.items()}


ENVIRONMENTS: dict[str, EnvironmentDefaults] = load_environments()
