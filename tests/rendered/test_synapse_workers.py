"""Synapse with workers, read by the real software: Synapse's config loader reads the main and every
worker config; every endpoint the proxy sends to a worker is one that worker's Synapse application serves."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
import yaml
from synapse.api.urls import LEGACY_MEDIA_PREFIX, MEDIA_R0_PREFIX, MEDIA_V3_PREFIX
from synapse.rest import ClientRestResource
from synapse.rest.client import media

from components.rendering.synapse_workers import GENERIC_WORKER, MEDIA_REPOSITORY, worker_app, worker_host
from config.profiles import LARGE, MEDIUM, synapse_workers
from tests.program import run_program
from tests.rendered.test_synapse_config import check_with_synapse
from tests.unit.mocks import RecordingMocks

pytestmark = pytest.mark.rendered

# staging runs the medium profile (workers turned on here), prod the large one (workers by default).
WORKER_STACKS = {"staging": MEDIUM, "prod": LARGE}


def _program(stack: str) -> RecordingMocks:
    mocks = RecordingMocks()
    run_program(mocks, stack, preview=False, overrides={"synapse": {"workers": True}})
    return mocks


@pytest.fixture(scope="module")
def programs() -> dict[str, RecordingMocks]:
    return {stack: _program(stack) for stack in WORKER_STACKS}


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_synapse_accepts_the_main_config_with_workers(programs: dict[str, RecordingMocks], stack: str, tmp_path: Path) -> None:
    files = programs[stack].files("synapse")
    homeserver = yaml.safe_load(files["/config/homeserver.yaml"])
    result = check_with_synapse(homeserver, files, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "instance_map" in homeserver and homeserver["redis"]["enabled"]


@pytest.mark.parametrize(
    ("stack", "worker"),
    [(stack, worker.name) for stack, profile in WORKER_STACKS.items() for worker in synapse_workers(profile.synapse_workers)],
)
def test_synapse_accepts_each_worker_config(programs: dict[str, RecordingMocks], stack: str, worker: str, tmp_path: Path) -> None:
    declared = next(w for w in synapse_workers(WORKER_STACKS[stack].synapse_workers) if w.name == worker)
    files = programs[stack].files(worker_host(declared))
    result = check_with_synapse(
        yaml.safe_load(files["/config/homeserver.yaml"]), files, tmp_path, yaml.safe_load(files["/config/worker.yaml"])
    )
    assert result.returncode == 0, result.stderr


def test_synapse_rejects_a_stream_writer_missing_from_instance_map(programs: dict[str, RecordingMocks], tmp_path: Path) -> None:
    files = programs["staging"].files("synapse-sync1")
    worker = yaml.safe_load(files["/config/worker.yaml"])
    shared = {**yaml.safe_load(files["/config/homeserver.yaml"]), "stream_writers": {"events": ["nobody"]}}
    result = check_with_synapse(shared, files, tmp_path, worker)
    assert result.returncode != 0


# --- what each Synapse application serves --------------------------------------------------------


class _Recorder:
    """Stands in for Synapse's HTTP server: keeps the path patterns servlets register."""

    def __init__(self) -> None:
        self.patterns: list[str] = []

    def register_paths(self, method: str, path_patterns: list[re.Pattern[str]], callback: Any, servlet_classname: str) -> None:
        self.patterns += [pattern.pattern for pattern in path_patterns]


def _served_patterns(app: str) -> list[str]:
    """The path patterns the client servlets of `app` register on a worker (a homeserver of mocks)."""
    homeserver = MagicMock()
    homeserver.config.worker.worker_app = app
    # Authentication stays Synapse's own (no delegation to an external service), as deployed.
    homeserver.config.mas.enabled = False
    homeserver.config.experimental.msc3861.enabled = False
    recorder = _Recorder()
    if app == MEDIA_REPOSITORY:
        media.register_servlets(homeserver, recorder)
        return recorder.patterns + [f"^{prefix}/" for prefix in (MEDIA_R0_PREFIX, MEDIA_V3_PREFIX, LEGACY_MEDIA_PREFIX)]
    ClientRestResource.register_servlets(recorder, homeserver)
    return recorder.patterns


_NAMED_CHOICE = re.compile(r"\(\?P<[^>]+>([^()\[\]]*\|[^()\[\]]*)\)")
_NAMED_GROUP = re.compile(r"\(\?P<[^>]+>[^)]*\)")
_ALTERNATIVES = re.compile(r"\(([^()?]*\|[^()]*)\)")


def _example_paths(pattern: str) -> list[str]:
    """Concrete paths a servlet pattern matches: each parameter `x`, each alternative taken."""
    template = _NAMED_GROUP.sub("x", _NAMED_CHOICE.sub(r"(\1)", pattern.strip("^$")))
    choices = [group.split("|") for group in _ALTERNATIVES.findall(template)]
    skeleton = _ALTERNATIVES.sub("{}", template.replace("{", "{{").replace("}", "}}"))
    return [re.sub(r"\\(.)", r"\1", skeleton.format(*combination)) for combination in itertools.product(*choices)]


def _routed_endpoints(conf: str) -> list[tuple[str, str]]:
    """(endpoint pattern, upstream) of every location the proxy sends to a worker."""
    blocks = re.findall(r'location ~ "([^"]+)" \{\n        proxy_pass http://(\w+);', conf)
    return [(pattern, upstream) for pattern, upstream in blocks if upstream != "synapse"]


@pytest.mark.parametrize("stack", WORKER_STACKS)
def test_every_endpoint_the_proxy_sends_to_a_worker_is_one_that_worker_serves(
    programs: dict[str, RecordingMocks], stack: str
) -> None:
    workers = synapse_workers(WORKER_STACKS[stack].synapse_workers)
    conf = programs[stack].files("proxy")["/etc/nginx/conf.d/default.conf"]
    servers = dict(re.findall(r"upstream (\w+) \{[^}]*?server ([a-z0-9-]+):", conf))
    app_of_host = {worker_host(worker): worker_app(worker) for worker in workers}
    examples = {app: [path for pattern in _served_patterns(app) for path in _example_paths(pattern)] for app in set(app_of_host.values())}
    routed = _routed_endpoints(conf)
    assert len(routed) > 40
    for endpoint, upstream in routed:
        app = app_of_host[servers[upstream]]
        assert any(re.search(endpoint, path) for path in examples[app]), (endpoint, upstream, app)


def test_an_endpoint_only_the_main_process_serves_would_be_caught() -> None:
    # Logging out is registered on the main process alone: no generic worker path matches it.
    examples = [path for pattern in _served_patterns(GENERIC_WORKER) for path in _example_paths(pattern)]
    assert not any(re.search("^/_matrix/client/(r0|v3)/logout$", path) for path in examples)
    assert any(re.search("^/_matrix/client/(r0|v3)/sync$", path) for path in examples)
