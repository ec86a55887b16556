"""Stack configuration as the Pulumi CLI would pass it to the program, read from the stack files.

Shared by the unit tests (Pulumi mocks) and the end-to-end harness.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The stack's configuration cannot be passed to the program."""


def project_name(program_dir: Path) -> str:
    document = yaml.safe_load((program_dir / "Pulumi.yaml").read_text()) or {}
    name = document.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{program_dir / 'Pulumi.yaml'} has no project name")
    return name


def _qualified(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _reject_secure(key: str, value: Any, source: str) -> None:
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            raise ConfigError(
                f"{source}: {key} is encrypted ('secure:'), which cannot be decrypted without the Pulumi CLI; "
                "pass its value in `secrets=` instead"
            )
        for name, item in value.items():
            _reject_secure(f"{key}.{name}", item, source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_secure(f"{key}[{index}]", item, source)


def deep_merge(base: Any, override: Any) -> Any:
    """`override` merged into `base`: objects merge key by key (None deletes a key), anything else replaces."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def config_string(value: Any) -> str:
    """A config value as the Pulumi CLI passes it to the program: scalars as text, objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load_config(
    program_dir: Path,
    project: str,
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys Pulumi would give the program for `Pulumi.<stack>.yaml`.

    Keys may omit the project namespace. `overrides` are deep-merged into the stack file's
    values; `secrets` are set like `pulumi config set --secret` (replacing any value).
    """
    values: dict[str, Any] = {}
    project_document = yaml.safe_load((program_dir / "Pulumi.yaml").read_text()) or {}
    for key, spec in (project_document.get("config") or {}).items():
        # Project-level config: either a plain value or {type, default/value, description}.
        if isinstance(spec, Mapping) and ("default" in spec or "value" in spec):
            values[_qualified(key, project)] = spec.get("value", spec.get("default"))
        elif not isinstance(spec, Mapping) or "type" not in spec:
            values[_qualified(key, project)] = spec
    stack_file = program_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise ConfigError(f"no stack file {stack_file.name} in {program_dir}")
    document = yaml.safe_load(stack_file.read_text()) or {}
    for key, value in (document.get("config") or {}).items():
        _reject_secure(key, value, stack_file.name)
        values[_qualified(key, project)] = value
    for key, value in (overrides or {}).items():
        _reject_secure(key, value, "config_overrides")
        qualified = _qualified(key, project)
        if value is None:
            values.pop(qualified, None)
        else:
            values[qualified] = deep_merge(values.get(qualified), value)
    secret_keys = []
    for key, value in (secrets or {}).items():
        qualified = _qualified(key, project)
        values[qualified] = value
        secret_keys.append(qualified)
    return {key: config_string(value) for key, value in values.items()}, secret_keys



ALERT_RECEIVERS: dict[str, Any] = {"receivers": ["webhook"]}
"""Monitoring settings with a receiver, which staging and prod require (the webhook's URL is a secret)."""


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlE6QRn4bq9Sg8Ffx6ArYsFvvvmK6iG5kY2tVf7NhQb"
"""An SSH host key line, which prod requires of a firewall (firewall.host_key)."""
