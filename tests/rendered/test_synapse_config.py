"""The Synapse files every stack deploys, read by the real software: Synapse's config loader and nginx."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.rendering import dump_yaml
from tests.program import STACKS, run_program
from tests.unit.mocks import RecordingMocks

pytestmark = pytest.mark.rendered


def _uploads(stack: str, container: str) -> dict[str, str]:
    mocks = RecordingMocks()
    run_program(mocks, stack, preview=False)
    return mocks.files(container)


def check_with_synapse(
    homeserver: dict[str, Any], files: dict[str, str], directory: Path, worker: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run Synapse's own checker on `homeserver` (and a worker's config read after it, as the worker
    reads them) and the container's `files`, with their paths moved into `directory`."""
    (directory / "media").mkdir(exist_ok=True)
    (directory / "log.config").write_text(files["/config/log.config"])
    secret_paths = {key: value for key, value in homeserver.items() if "secret" in key and key.endswith("_path")}
    for key, path in secret_paths.items():
        (directory / Path(path).name).write_text(files[path])
    subprocess.run(
        [sys.executable, "-m", "synapse._scripts.generate_signing_key", "-o", str(directory / "signing.key")],
        check=True,
    )
    relocated = {
        **homeserver,
        "signing_key_path": str(directory / "signing.key"),
        "log_config": str(directory / "log.config"),
        "media_store_path": str(directory / "media"),
        "pid_file": str(directory / "homeserver.pid"),
        **{key: str(directory / Path(path).name) for key, path in secret_paths.items()},
    }
    if "redis" in homeserver:
        (directory / "redis_password").write_text(files[homeserver["redis"]["password_path"]])
        relocated["redis"] = {**homeserver["redis"], "password_path": str(directory / "redis_password")}
    path = directory / "homeserver.yaml"
    path.write_text(dump_yaml(relocated))
    paths = ["-c", str(path)]
    if worker is not None:
        worker = {**worker, "worker_log_config": str(directory / "log.config")}
        (directory / "worker.yaml").write_text(dump_yaml(worker))
        paths += ["-c", str(directory / "worker.yaml")]
    return subprocess.run(
        [sys.executable, "-m", "synapse.config", *paths],
        capture_output=True,
        text=True,
        cwd=directory,
    )


@pytest.mark.parametrize("stack", STACKS)
def test_synapse_accepts_the_rendered_homeserver_yaml(stack: str, tmp_path: Path) -> None:
    uploads = _uploads(stack, "synapse")
    result = check_with_synapse(yaml.safe_load(uploads["/config/homeserver.yaml"]), uploads, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Config parses OK!" in result.stdout


def test_synapse_accepts_the_rendered_message_and_media_retention(tmp_path: Path) -> None:
    mocks = RecordingMocks()
    retention = {
        "retention": {"enabled": True, "max_lifetime": "180d", "min_lifetime": "1d"},
        "media_retention": {"local_media_lifetime": "365d", "remote_media_lifetime": "30d"},
    }
    run_program(mocks, "prod", preview=False, overrides={"synapse": retention})
    uploads = mocks.files("synapse")
    homeserver = yaml.safe_load(uploads["/config/homeserver.yaml"])
    assert homeserver["retention"]["default_policy"] == {"max_lifetime": "180d", "min_lifetime": "1d"}

    result = check_with_synapse(homeserver, uploads, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Config parses OK!" in result.stdout


def test_synapse_accepts_guest_access_and_a_web_client_location(tmp_path: Path) -> None:
    mocks = RecordingMocks()
    client = {"guest_access": True, "web_client_location": "https://element.example.com/"}
    run_program(mocks, "test", preview=False, overrides={"synapse": client})
    uploads = mocks.files("synapse")
    homeserver = yaml.safe_load(uploads["/config/homeserver.yaml"])
    assert (homeserver["allow_guest_access"], homeserver["web_client_location"]) == (True, "https://element.example.com/")

    result = check_with_synapse(homeserver, uploads, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Config parses OK!" in result.stdout


def test_synapse_checker_rejects_a_broken_homeserver_yaml(tmp_path: Path) -> None:
    # dev: one process, which reads the media settings (with workers, the media repository does).
    uploads = _uploads("dev", "synapse")
    homeserver = yaml.safe_load(uploads["/config/homeserver.yaml"])
    homeserver["max_upload_size"] = "eight megabytes"
    result = check_with_synapse(homeserver, uploads, tmp_path)
    assert result.returncode != 0


def test_rendered_log_config_is_a_valid_logging_dict_config() -> None:
    import logging.config

    config = yaml.safe_load(_uploads("prod", "synapse")["/config/log.config"])
    logging.config.dictConfig(config)


def _wellknown_bodies(conf: str) -> dict[str, Any]:
    bodies = re.findall(r"location = /\.well-known/matrix/(\w+) \{.*?return 200 '(.*?)';", conf, re.S)
    return {name: json.loads(body) for name, body in bodies}


@pytest.mark.parametrize("stack", STACKS)
def test_wellknown_documents_are_json(stack: str) -> None:
    documents = _wellknown_bodies(_uploads(stack, "synapse-wellknown")["/etc/nginx/conf.d/default.conf"])
    assert set(documents) == {"server", "client"}
    assert documents["server"]["m.server"].endswith(":443")
    assert documents["client"]["m.homeserver"]["base_url"].startswith("http")


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (the test script installs it)")
@pytest.mark.parametrize("stack", STACKS)
def test_nginx_accepts_the_wellknown_server_block(stack: str, tmp_path: Path) -> None:
    server_block = _uploads(stack, "synapse-wellknown")["/etc/nginx/conf.d/default.conf"]
    server_block = server_block.replace("listen 80;", "listen 127.0.0.1:18080;")
    (tmp_path / "default.conf").write_text(server_block)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/default.conf;\n}}\n"
    )
    result = subprocess.run(["nginx", "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
