"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.e2e.harness.engine import engine_unavailable_reason


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """A client of the Docker engine the tests use; the test is skipped, with the reason, when none answers."""
    reason = engine_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    client = docker.from_env(timeout=120)
    yield client
    client.close()
