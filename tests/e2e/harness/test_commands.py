"""Local commands run as pulumi-command runs them, and remote ones are sent as it sends them; no engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .commands import CommandFailed, CommandResult, command_spec, remote_command_spec, run_script
from .values import UnsupportedInput, wrap_secret


def test_create_runs_under_sh_with_the_environment(tmp_path: Path) -> None:
    spec = command_spec({"create": "echo $GREETING", "environment": {"GREETING": "hello"}}, tmp_path)
    assert run_script(spec, spec.create or "", "greet").stdout == "hello"


def test_one_trailing_newline_is_removed(tmp_path: Path) -> None:
    spec = command_spec({"create": "printf 'a\\n\\n'"}, tmp_path)
    assert run_script(spec, spec.create or "", "c").stdout == "a\n"


def test_interpreter_replaces_sh(tmp_path: Path) -> None:
    spec = command_spec({"create": "print(6 * 7)", "interpreter": ["python3", "-c"]}, tmp_path)
    assert run_script(spec, spec.create or "", "c").stdout == "42"


def test_runs_in_the_program_directory_by_default(tmp_path: Path) -> None:
    spec = command_spec({"create": "pwd"}, tmp_path)
    assert run_script(spec, spec.create or "", "c").stdout == str(tmp_path)


def test_dir_is_relative_to_the_program(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    spec = command_spec({"create": "pwd", "dir": "sub"}, tmp_path)
    assert run_script(spec, spec.create or "", "c").stdout == str(tmp_path / "sub")


def test_stdin_is_passed(tmp_path: Path) -> None:
    spec = command_spec({"create": "cat", "stdin": "from stdin"}, tmp_path)
    assert run_script(spec, spec.create or "", "c").stdout == "from stdin"


def test_stderr_is_captured(tmp_path: Path) -> None:
    spec = command_spec({"create": "echo oops >&2"}, tmp_path)
    assert run_script(spec, spec.create or "", "c").stderr == "oops"


def test_failure_reports_status_and_stderr(tmp_path: Path) -> None:
    spec = command_spec({"create": "echo 'bucket exists' >&2; exit 3"}, tmp_path)
    with pytest.raises(CommandFailed, match=r"status 3; stderr:\nbucket exists"):
        run_script(spec, spec.create or "", "make-bucket")


def test_failure_does_not_print_secret_environment_or_script(tmp_path: Path) -> None:
    spec = command_spec({"create": "exit 1", "environment": {"PASSWORD": wrap_secret("hunter2")}}, tmp_path)
    with pytest.raises(CommandFailed) as failure:
        run_script(spec, spec.create or "", "c")
    assert "hunter2" not in str(failure.value) and "exit 1" not in str(failure.value)


def test_secret_input_marks_the_spec_secret(tmp_path: Path) -> None:
    assert command_spec({"create": "true", "environment": {"P": wrap_secret("x")}}, tmp_path).secret


def test_delete_sees_the_previous_output(tmp_path: Path) -> None:
    spec = command_spec({"create": "echo made", "delete": "echo $PULUMI_COMMAND_STDOUT"}, tmp_path)
    previous = CommandResult(stdout="made", stderr="")
    assert run_script(spec, spec.delete or "", "c", previous=previous).stdout == "made"


def test_asset_paths_are_not_supported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="assetPaths"):
        command_spec({"create": "true", "assetPaths": ["*.txt"]}, tmp_path)


REMOTE = {"create": "sh -s", "stdin": "ufw status", "connection": {"host": "203.0.113.7", "user": "deploy", "port": 2222}}


def _argv(inputs: dict, tmp_path: Path) -> list[str]:
    connection = remote_command_spec(inputs, tmp_path).connection
    assert connection is not None
    return connection.ssh_argv(tmp_path)


def test_remote_command_logs_in_as_the_user_on_the_port(tmp_path: Path) -> None:
    argv = _argv(REMOTE, tmp_path)
    assert argv[-1] == "deploy@203.0.113.7" and argv[argv.index("-p") + 1] == "2222"


def test_remote_command_defaults_to_root_on_port_22(tmp_path: Path) -> None:
    argv = _argv({**REMOTE, "connection": {"host": "203.0.113.7"}}, tmp_path)
    assert argv[-1] == "root@203.0.113.7" and argv[argv.index("-p") + 1] == "22"


def test_remote_command_ignores_the_host_key_when_none_is_given(tmp_path: Path) -> None:
    assert "StrictHostKeyChecking=no" in _argv(REMOTE, tmp_path)


def test_remote_command_checks_the_given_host_key(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDf2"
    argv = _argv({**REMOTE, "connection": {**REMOTE["connection"], "hostKey": key}}, tmp_path)
    assert "StrictHostKeyChecking=yes" in argv
    assert (tmp_path / "known_hosts").read_text() == f"[203.0.113.7]:2222 {key}\n"


def test_a_host_key_on_port_22_is_known_by_the_host_alone(tmp_path: Path) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDf2"
    _argv({**REMOTE, "connection": {"host": "203.0.113.7", "hostKey": key}}, tmp_path)
    assert (tmp_path / "known_hosts").read_text() == f"203.0.113.7 {key}\n"


def test_remote_command_logs_in_with_the_private_key_only(tmp_path: Path) -> None:
    connection = {**REMOTE["connection"], "privateKey": wrap_secret("-----BEGIN OPENSSH PRIVATE KEY-----\nx")}
    argv = _argv({**REMOTE, "connection": connection}, tmp_path)
    key = Path(argv[argv.index("-i") + 1])
    assert "IdentitiesOnly=yes" in argv
    assert key.read_text().endswith("x\n") and key.stat().st_mode & 0o777 == 0o600


def test_remote_command_without_a_private_key_uses_the_agent(tmp_path: Path) -> None:
    assert "-i" not in _argv(REMOTE, tmp_path)


def test_remote_command_with_a_secret_key_is_secret(tmp_path: Path) -> None:
    connection = {**REMOTE["connection"], "privateKey": wrap_secret("k")}
    assert remote_command_spec({**REMOTE, "connection": connection}, tmp_path).secret


def test_remote_environment_is_not_supported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="environment"):
        remote_command_spec({**REMOTE, "environment": {"A": "b"}}, tmp_path)


def test_remote_command_needs_a_connection(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="connection: is required"):
        remote_command_spec({"create": "true"}, tmp_path)


def test_remote_failure_reports_status_and_stderr(tmp_path: Path) -> None:
    # Nothing listens on port 1 of the loopback: ssh itself fails, with its own message.
    spec = remote_command_spec({**REMOTE, "connection": {"host": "127.0.0.1", "port": 1, "dialErrorLimit": 1}}, tmp_path)
    with pytest.raises(CommandFailed, match=r"status 255; stderr:\n.*(refused|port 1)"):
        run_script(spec, spec.create or "", "firewall-rules")
