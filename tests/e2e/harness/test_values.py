"""Secret wrappers and accounted field reading; no engine needed."""

from __future__ import annotations

import pytest

from .values import SECRET_SIG, SIG_KEY, Fields, UnsupportedInput, contains_secret, unwrap_secrets, wrap_secret


def test_secret_is_unwrapped() -> None:
    assert unwrap_secrets(wrap_secret("hunter2")) == "hunter2"


def test_nested_secrets_are_unwrapped() -> None:
    value = {"envs": wrap_secret(["A=1", wrap_secret("B=2")]), "uploads": [{"content": wrap_secret("x")}]}
    assert unwrap_secrets(value) == {"envs": ["A=1", "B=2"], "uploads": [{"content": "x"}]}


def test_secret_wrapped_in_a_secret_is_unwrapped() -> None:
    assert unwrap_secrets(wrap_secret(wrap_secret(3))) == 3


def test_secret_is_found_at_depth() -> None:
    assert contains_secret({"a": [1, {"b": {SIG_KEY: SECRET_SIG, "value": "s"}}]})


def test_plain_value_has_no_secret() -> None:
    assert not contains_secret({"a": [1, {"b": "s"}]})


def test_whole_number_float_reads_as_integer() -> None:
    assert Fields({"memory": 512.0}, "r").integer("memory") == 512


def test_unread_field_fails_finish_naming_it() -> None:
    fields = Fields({"name": "x", "surprise": 1}, "docker:index/container:Container 'web'")
    fields.string("name")
    with pytest.raises(UnsupportedInput, match=r"Container 'web': .*surprise"):
        fields.finish()


def test_accepted_field_passes_finish() -> None:
    fields = Fields({"keepers": {"a": "b"}}, "r")
    fields.accept("keepers")
    fields.finish()


def test_none_values_count_as_absent() -> None:
    Fields({"name": None}, "r").finish()


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(UnsupportedInput, match=r"r\.wait: expected a boolean"):
        Fields({"wait": "yes"}, "r").boolean("wait")
