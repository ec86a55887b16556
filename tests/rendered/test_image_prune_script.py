"""The image prune script run by bash against a stand-in docker CLI: what it keeps and what it removes.

The stand-in answers `docker ps`, `docker inspect`, `docker image inspect`, `docker image ls` and
`docker image rm` from a JSON file as the engine would (containers run image ids); the
end-to-end test runs the same script against the real engine.
"""

from __future__ import annotations

import hashlib
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
if arguments[:2] == ["ps", "-aq"]:
    print("\n".join(state["containers"]))
elif arguments[:3] == ["inspect", "-f", "{{.Image}}"]:
    print("\n".join(state["containers"][name] for name in arguments[3:]))
elif arguments[:2] == ["image", "inspect"]:
    print("".join(image["ref"] + "\n" for image in state["images"] if image["id"] == arguments[-1]))
elif arguments[:3] == ["image", "ls", "--no-trunc"]:
    for image in state["images"]:
        if image["ref"].rsplit(":", 1)[0] == arguments[3]:
            print(f"{image['created']}|{image['id']}|{image['ref']}")
elif arguments[:2] == ["image", "rm"]:
    if arguments[2] in state["in_use"]:
        sys.exit(1)
    state["images"] = [image for image in state["images"] if image["ref"] != arguments[2]]
    json.dump(state, open(path, "w"))
else:
    sys.exit(f"unexpected docker {arguments}")
"""


def _id(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def _run(tmp_path: Path, running: list[str], images: dict[str, str], in_use: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """Run the script with containers running the images `running`; its output and the image references left."""
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    state = {
        "containers": {f"container-{index}": _id(ref) for index, ref in enumerate(running)},
        "images": [{"ref": ref, "id": _id(ref), "created": created} for ref, created in images.items()],
        "in_use": list(in_use),
    }
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
    assert "kept nginx:1.26.0, the version before the one running" in output
    assert "pruned nginx:1.25.0" in output


def test_the_previous_version_is_the_newest_older_one_whatever_the_tags_say(tmp_path: Path) -> None:
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


def test_repositories_are_told_apart_from_a_registry_port(tmp_path: Path) -> None:
    images = {"registry.example.com:5000/app:1": _day(1), "registry.example.com:5000/app:2": _day(2), "registry.example.com:5000/app:3": _day(3)}
    _, left = _run(tmp_path, ["registry.example.com:5000/app:3"], images)
    assert left == ["registry.example.com:5000/app:2", "registry.example.com:5000/app:3"]


def test_an_image_the_stack_built_without_older_tags_loses_nothing(tmp_path: Path) -> None:
    output, left = _run(tmp_path, ["selfhosted-prod-backup:local"], {"selfhosted-prod-backup:local": _day(1)})
    assert (output, left) == ("", ["selfhosted-prod-backup:local"])
