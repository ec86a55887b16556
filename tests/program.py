"""Runs the Pulumi program of this repository under Pulumi's mock runtime, for any stack file.

Used by the unit tests (with recording mocks) and by the end-to-end harness (with mocks that
apply each resource to a real Docker engine).
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as runtime_settings

from config.merge import deep_merge

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "test", "staging", "prod")


def project_name(program_dir: Path = ROOT) -> str:
    """The project name from Pulumi.yaml: the namespace of every config key."""
    return yaml.safe_load((program_dir / "Pulumi.yaml").read_text())["name"]


def stack_config(
    stack: str,
    overrides: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    program_dir: Path = ROOT,
) -> tuple[dict[str, str], list[str]]:
    """The config map Pulumi would pass for `Pulumi.<stack>.yaml`, with overrides deep-merged.

    Keys of `overrides` and `secrets` are given without the project namespace. Returns the map
    of namespaced keys to strings (objects as JSON) and the list of secret keys.
    """
    project = project_name(program_dir)
    document = yaml.safe_load((program_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    values: dict[str, Any] = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            raise ValueError(f"{key} is encrypted in Pulumi.{stack}.yaml; pass it in `secrets` instead")
        values[key] = value
    namespaced_overrides = {f"{project}:{key}": value for key, value in (overrides or {}).items()}
    values = deep_merge(values, namespaced_overrides)
    config = {key: _config_string(value) for key, value in values.items()}
    secret_keys = []
    for key, value in (secrets or {}).items():
        config[f"{project}:{key}"] = value
        secret_keys.append(f"{project}:{key}")
    return config, secret_keys


def _config_string(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_program(
    mocks: pulumi.runtime.Mocks,
    stack: str,
    preview: bool,
    overrides: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    program_dir: Path = ROOT,
) -> dict[str, pulumi.Output[Any]]:
    """Evaluate `__main__.py` for a stack under `mocks`; return the stack's exports.

    Every resource registration has completed when this returns (pulumi.runtime.test waits
    for outstanding work), and an exception raised by the program propagates.
    """
    config, secret_keys = stack_config(stack, overrides, secrets, program_dir)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project_name(program_dir), stack=stack, preview=preview)
    pulumi.runtime.set_all_config(config, secret_keys)

    @pulumi.runtime.test
    def evaluate() -> None:
        runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")

    evaluate()
    root = runtime_settings.get_root_resource()
    assert root is not None
    return dict(root.outputs)  # type: ignore[attr-defined]
