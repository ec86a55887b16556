"""Local commands run as pulumi-command runs them; no engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .commands import CommandFailed, CommandResult, command_spec, run_script
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
