"""Runs the Pulumi program of this repository under Pulumi's mock runtime, for any stack file.

Used by the unit tests (with recording mocks) and by the end-to-end harness (with mocks that
apply each resource to a real Docker engine).
"""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings

from tests.stack_config import load_config, project_name

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "test", "staging", "prod")


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
    project = project_name(program_dir)
    config, secret_keys = load_config(program_dir, project, stack, overrides, secrets)
    runtime_settings.ROOT.set(None)
    # asyncio.run() (a Matrix client's, in a test run earlier in this process) leaves no current
    # event loop, and Pulumi's test runner needs one.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview)
    pulumi.runtime.set_all_config(config, secret_keys)

    @pulumi.runtime.test
    def evaluate() -> None:
        runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")

    evaluate()
    root = runtime_settings.get_root_resource()
    assert root is not None
    return dict(root.outputs)  # type: ignore[attr-defined]
