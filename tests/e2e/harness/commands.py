"""Run `command:local:Command` and `command:remote:Command` resources for real, as pulumi-command does.

A local script runs under `interpreter` (default `/bin/sh -c`) with the provider's environment
plus `environment`, in `dir` (default: the program's directory), with `stdin`. A remote script runs
over SSH (OpenSSH's `ssh` client) as the command of one session on `connection`'s host, with
`stdin`: by the private key given, else the SSH agent; the host key is checked when given and
ignored otherwise, as the provider does. `stdout` and `stderr` lose one trailing newline. A failure
reports the exit status and stderr, never the environment or a key.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .values import Fields, contains_secret

COMMAND = "command:local:Command"
REMOTE_COMMAND = "command:remote:Command"
DEFAULT_TIMEOUT_SECONDS = 600


class CommandFailed(RuntimeError):
    """A command exited non-zero (or could not start)."""


@dataclass(frozen=True)
class SshConnection:
    """`connection` of a remote command: where and how the provider's SSH client logs in."""

    host: str
    user: str
    port: int
    private_key: str | None
    host_key: str | None
    attempts: int
    timeout_seconds: int

    def ssh_argv(self, directory: Path) -> list[str]:
        """OpenSSH's client, told what the provider does, with the key and known host written in `directory`."""
        argv = [
            "ssh",
            "-p", str(self.port),
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            "-o", f"ConnectionAttempts={self.attempts}",
            "-o", f"ConnectTimeout={self.timeout_seconds}",
        ]
        if self.private_key is not None:
            key = directory / "key"
            key.write_text(self.private_key if self.private_key.endswith("\n") else self.private_key + "\n")
            key.chmod(0o600)
            argv += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        if self.host_key is not None:
            known = directory / "known_hosts"
            # OpenSSH names a host on port 22 plainly, on another port as [host]:port.
            name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
            known.write_text(f"{name} {self.host_key}\n")
            argv += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        else:
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        return [*argv, f"{self.user}@{self.host}"]


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
    connection: SshConnection | None = None
    """Set for a remote command: the script runs there, not under `interpreter`."""


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


def remote_command_spec(inputs: Mapping[str, Any], base_dir: Path, where: str = REMOTE_COMMAND) -> CommandSpec:
    f = Fields(inputs, where)
    connection = f.obj("connection")
    if connection is None:
        raise f.error("connection", "is required")
    spec = CommandSpec(
        create=f.string("create"),
        update=f.string("update"),
        delete=f.string("delete"),
        interpreter=[],
        # The provider passes `environment` by SSH's setenv, which sshd refuses unless its
        # AcceptEnv names each variable; a program that needs it is not one the harness can check.
        environment={},
        dir=base_dir,
        stdin=f.string("stdin"),
        add_previous_output_in_env=False,
        secret=contains_secret(dict(inputs)),
        triggers=list(f.raw("triggers") or []),
        connection=SshConnection(
            host=connection.required_string("host"),
            user=connection.string("user", "root") or "root",
            port=connection.integer("port", 22) or 22,
            private_key=connection.string("privateKey"),
            host_key=connection.string("hostKey"),
            attempts=max(connection.integer("dialErrorLimit", 10) or 1, 1),
            timeout_seconds=connection.integer("perDialTimeout", 15) or 15,
        ),
    )
    f.accept("logging", "addPreviousOutputInEnv")
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
    with tempfile.TemporaryDirectory(prefix="harness-ssh-") as scratch:
        argv = spec.interpreter if spec.connection is None else spec.connection.ssh_argv(Path(scratch))
        try:
            completed = subprocess.run(
                [*argv, script],
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
