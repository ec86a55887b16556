"""Run `command:local:Command` resources for real, as pulumi-command does.

The script runs under `interpreter` (default `/bin/sh -c`) with the provider's environment plus
`environment`, in `dir` (default: the program's directory), with `stdin`. `stdout` and `stderr`
lose one trailing newline. A failure reports the exit status and stderr, never the environment.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .values import Fields, contains_secret

COMMAND = "command:local:Command"
DEFAULT_TIMEOUT_SECONDS = 600


class CommandFailed(RuntimeError):
    """A command exited non-zero (or could not start)."""


@dataclass(frozen=True)
class CommandSpec:
    create: str | None
    update: str | None
    delete: str | None
    interpreter: list[str]
    environment: dict[str, str]
    dir: Path
    stdin: str | None
    add_previous_output_in_env: bool
    secret: bool
    """Whether any input is secret: then the outputs are secret too, and no script text is printed."""
    triggers: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class CommandResult:
    stdout: str
    stderr: str


def command_spec(inputs: Mapping[str, Any], base_dir: Path, where: str = COMMAND) -> CommandSpec:
    f = Fields(inputs, where)
    directory = f.string("dir")
    spec = CommandSpec(
        create=f.string("create"),
        update=f.string("update"),
        delete=f.string("delete"),
        interpreter=f.strings("interpreter") or ["/bin/sh", "-c"],
        environment=f.string_map("environment"),
        dir=(base_dir / directory) if directory else base_dir,
        stdin=f.string("stdin"),
        add_previous_output_in_env=f.flag("addPreviousOutputInEnv", True),
        secret=contains_secret(dict(inputs)),
        triggers=list(f.raw("triggers") or []),
    )
    # `logging` only controls what the provider echoes to the Pulumi log.
    f.accept("logging")
    f.finish()
    return spec


def run_script(
    spec: CommandSpec,
    script: str,
    name: str,
    previous: CommandResult | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> CommandResult:
    """Run one of the spec's scripts; raise CommandFailed with its stderr when it fails."""
    env = dict(os.environ)
    env.update(spec.environment)
    if spec.add_previous_output_in_env and previous is not None:
        if previous.stdout:
            env["PULUMI_COMMAND_STDOUT"] = previous.stdout
        if previous.stderr:
            env["PULUMI_COMMAND_STDERR"] = previous.stderr
    shown = "(script not shown: it has secret inputs)" if spec.secret else repr(script)
    try:
        completed = subprocess.run(
            [*spec.interpreter, script],
            input=(spec.stdin or "").encode(),
            capture_output=True,
            cwd=spec.dir,
            env=env,
            timeout=timeout_seconds,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandFailed(f"command {name!r} {shown} could not run: {exc}") from None
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode != 0:
        raise CommandFailed(
            f"command {name!r} {shown} exited with status {completed.returncode}; stderr:\n{_tail(stderr)}"
        )
    return CommandResult(stdout=stdout.removesuffix("\n"), stderr=stderr.removesuffix("\n"))


def _tail(text: str, lines: int = 40) -> str:
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(kept) if kept else "(empty)"
