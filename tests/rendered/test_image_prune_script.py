"""The image prune script run by bash against a stand-in docker CLI: what it keeps and what it removes.

The stand-in answers `docker ps`, `docker image ls` and `docker image rm` from a JSON file, as
the engine would; the end-to-end test runs the same script against the real engine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.rendering.maintenance import INTERPRETER, render_image_prune

pytestmark = pytest.mark.rendered

FAKE_DOCKER = r"""#!/usr/bin/env python3
import json, sys
path = sys.argv[0] + ".json"
state = json.load(open(path))
arguments = sys.argv[1:]
if arguments[:2] == ["ps", "-a"]:
    print("\n".join(state["containers"]))
elif arguments[:2] == ["image", "ls"]:
    repository = arguments[2]
    for image in state["images"]:
        if image["ref"].rsplit(":", 1)[0] == repository:
            print(f"{image['created']}|{image['ref']}")
elif arguments[:2] == ["image", "rm"]:
    if arguments[2] in state["in_use"]:
        sys.exit(1)
    state["images"] = [image for image in state["images"] if image["ref"] != arguments[2]]
    json.dump(state, open(path, "w"))
else:
    sys.exit(f"unexpected docker {arguments}")
"""


def _run(tmp_path: Path, containers: list[str], images: dict[str, str], in_use: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """Run the script; its output and the image references left."""
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    state = {"containers": containers, "images": [{"ref": ref, "created": created} for ref, created in images.items()], "in_use": list(in_use)}
    Path(f"{docker}.json").write_text(json.dumps(state))
    result = subprocess.run([*INTERPRETER, render_image_prune("selfhosted.stack=prod")], capture_output=True, text=True,
                            env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=False)
    assert result.returncode == 0, result.stderr
    left = sorted(image["ref"] for image in json.loads(Path(f"{docker}.json").read_text())["images"])
    return result.stdout, left


def _day(day: int) -> str:
    return f"2026-11-{day:02d} 02:00:00 +0000 UTC"


def test_the_running_version_and_the_one_before_it_stay_older_ones_go(tmp_path: Path) -> None:
    output, left = _run(tmp_path, ["nginx:1.27.5"], {"nginx:1.25.0": _day(1), "nginx:1.26.0": _day(2), "nginx:1.27.5": _day(3)})
    assert left == ["nginx:1.26.0", "nginx:1.27.5"]
    assert "kept nginx:1.26.0, the version before nginx:1.27.5" in output
    assert "pruned nginx:1.25.0" in output


def test_the_previous_version_is_the_newest_other_one_whatever_the_tags_say(tmp_path: Path) -> None:
    _, left = _run(tmp_path, ["synapse:v1.163.2"], {"synapse:v1.99.0": _day(5), "synapse:v1.162.0": _day(2), "synapse:v1.163.2": _day(6)})
    assert left == ["synapse:v1.163.2", "synapse:v1.99.0"]


def test_a_newer_version_not_yet_running_stays(tmp_path: Path) -> None:
    _, left = _run(tmp_path, ["nginx:1.26.0"], {"nginx:1.25.0": _day(1), "nginx:1.26.0": _day(2), "nginx:1.27.5": _day(3)})
    assert left == ["nginx:1.25.0", "nginx:1.26.0", "nginx:1.27.5"]


def test_an_older_version_another_container_runs_stays(tmp_path: Path) -> None:
    output, left = _run(tmp_path, ["redis:7.4.5"], {"redis:7.2.0": _day(1), "redis:7.4.0": _day(2), "redis:7.4.5": _day(3)},
                        in_use=("redis:7.2.0",))
    assert left == ["redis:7.2.0", "redis:7.4.0", "redis:7.4.5"]
    assert "kept redis:7.2.0: a container uses it" in output


def test_images_run_by_digest_or_registry_port_without_tag_are_left_alone(tmp_path: Path) -> None:
    images = {"selfhosted-prod-backup:local": _day(1), "registry.example.com:5000/app:1": _day(2)}
    _, left = _run(tmp_path, ["sha256:" + "a" * 64, "backup@sha256:" + "b" * 64, "registry.example.com:5000/app"], images)
    assert left == sorted(images)


def test_a_repository_with_only_its_running_version_loses_nothing(tmp_path: Path) -> None:
    output, left = _run(tmp_path, ["postgres:16.10-bookworm"], {"postgres:16.10-bookworm": _day(1)})
    assert (output, left) == ("", ["postgres:16.10-bookworm"])
