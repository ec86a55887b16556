"""Old images leave the host after upgrades, the previous version stays for rollback.

A Synapse stack's `.well-known` server is upgraded twice (three builds of its nginx image, one
repository, three tags); after each `pulumi up`, the prune keeps the version running and the
one before it, and removes the older one.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.harness import AppliedStack, apply_program
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.stacks import LOCAL_IMAGES, ROOT, host_ports, local_overrides, record_figure

pytestmark = pytest.mark.e2e

PREFIX = "e2e-prune"
PORT = host_ports(19200)
REPOSITORY = "e2e.local/nginx-versions"
VERSIONS = ("v1", "v2", "v3")


def _docker(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *arguments], input=stdin, capture_output=True, text=True, timeout=600, check=False)


def _tags() -> list[str]:
    listed = _docker("image", "ls", REPOSITORY, "--format", "{{.Tag}}")
    return sorted(listed.stdout.split())


@pytest.fixture(scope="module")
def versions() -> Iterator[None]:
    """Three builds of nginx, one after the other (each a second newer than the last)."""
    require_engine()
    built = subprocess.run(["bash", str(ROOT / "tests" / "e2e" / "images" / "build.sh"), "postgres", "synapse", "nginx"],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.skip(f"the stand-in images could not be built: {built.stderr.strip()[-500:]}")
    for version in VERSIONS:
        dockerfile = f"FROM {LOCAL_IMAGES['nginx']}\nLABEL version={version}\n"
        result = _docker("build", "-q", "-t", f"{REPOSITORY}:{version}", "-", stdin=dockerfile)
        assert result.returncode == 0, result.stderr
        time.sleep(1.1)
    yield
    for version in VERSIONS:
        _docker("image", "rm", f"{REPOSITORY}:{version}")


def _overrides(version: str) -> dict:
    return local_overrides(
        PREFIX,
        PORT,
        {
            "images": {"nginx": f"{REPOSITORY}:{version}"},
            "voicegrow": {"enabled": False},
            "proxy": {"enabled": False},
            "backup": {"enabled": False},
        },
    )


def test_upgrades_keep_the_running_and_the_previous_version_and_prune_the_rest(versions: None) -> None:
    stack: AppliedStack = apply_program(ROOT, "test", _overrides("v1"))
    try:
        assert _tags() == ["v1", "v2", "v3"], "nothing older than what runs is pruned on the first deploy"
        started = time.monotonic()
        stack = stack.update(_overrides("v2"))
        assert _tags() == ["v1", "v2", "v3"], "v1 is the version before v2: it stays"
        stack = stack.update(_overrides("v3"))
        record_figure("e2e", "prune.two_upgrades", time.monotonic() - started)
        assert _tags() == ["v2", "v3"]
        running = _docker("inspect", "-f", "{{.Image}}", f"{PREFIX}-synapse-wellknown").stdout.strip()
        assert running == _docker("image", "inspect", "-f", "{{.Id}}", f"{REPOSITORY}:v3").stdout.strip()
    finally:
        stack.destroy()
