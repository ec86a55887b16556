"""Stack files become the config map the Pulumi CLI would give the program; no engine needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.stack_config import ConfigError, deep_merge, load_config


def program(tmp_path: Path, stack_yaml: str, project_yaml: str = "name: demo\nruntime: python\n") -> Path:
    (tmp_path / "Pulumi.yaml").write_text(project_yaml)
    (tmp_path / "Pulumi.e2e.yaml").write_text(stack_yaml)
    return tmp_path


def test_scalars_become_strings(tmp_path: Path) -> None:
    config, _ = load_config(program(tmp_path, "config:\n  demo:replicas: 2\n  demo:debug: true\n"), "demo", "e2e")
    assert config == {"demo:replicas": "2", "demo:debug": "true"}


def test_objects_become_json(tmp_path: Path) -> None:
    config, _ = load_config(program(tmp_path, "config:\n  demo:synapse:\n    serverName: a.test\n"), "demo", "e2e")
    assert json.loads(config["demo:synapse"]) == {"serverName": "a.test"}


def test_keys_without_namespace_get_the_project(tmp_path: Path) -> None:
    config, _ = load_config(program(tmp_path, "config:\n  environment: dev\n"), "demo", "e2e")
    assert config == {"demo:environment": "dev"}


def test_other_namespaces_are_kept(tmp_path: Path) -> None:
    config, _ = load_config(program(tmp_path, "config:\n  docker:host: unix:///run/docker.sock\n"), "demo", "e2e")
    assert config == {"docker:host": "unix:///run/docker.sock"}


def test_overrides_deep_merge_into_objects(tmp_path: Path) -> None:
    directory = program(tmp_path, "config:\n  demo:synapse:\n    serverName: a.test\n    workers: 1\n")
    config, _ = load_config(directory, "demo", "e2e", overrides={"synapse": {"workers": 4}})
    assert json.loads(config["demo:synapse"]) == {"serverName": "a.test", "workers": 4}


def test_override_none_removes_a_key(tmp_path: Path) -> None:
    config, _ = load_config(program(tmp_path, "config:\n  demo:tls: on\n"), "demo", "e2e", overrides={"demo:tls": None})
    assert config == {}


def test_secrets_are_set_and_marked(tmp_path: Path) -> None:
    config, secret_keys = load_config(program(tmp_path, "config: {}\n"), "demo", "e2e", secrets={"adminPassword": "pw"})
    assert (config, secret_keys) == ({"demo:adminPassword": "pw"}, ["demo:adminPassword"])


def test_encrypted_values_fail_clearly(tmp_path: Path) -> None:
    directory = program(tmp_path, "config:\n  demo:db:\n    password:\n      secure: AAABAx==\n")
    with pytest.raises(ConfigError, match=r"demo:db\.password is encrypted"):
        load_config(directory, "demo", "e2e")


def test_missing_stack_file_fails_clearly(tmp_path: Path) -> None:
    program(tmp_path, "config: {}\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.prod\.yaml"):
        load_config(tmp_path, "demo", "prod")


def test_project_level_defaults_are_used(tmp_path: Path) -> None:
    directory = program(tmp_path, "config: {}\n", "name: demo\nconfig:\n  region:\n    default: here\n")
    assert load_config(directory, "demo", "e2e")[0] == {"demo:region": "here"}


def test_deep_merge_replaces_lists() -> None:
    assert deep_merge({"a": [1, 2], "b": {"c": 1}}, {"a": [3], "b": {"d": 2}}) == {"a": [3], "b": {"c": 1, "d": 2}}
