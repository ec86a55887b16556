"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.e2e.harness import connect_engine


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    """A client of the Docker engine the stacks are applied to."""
    client = connect_engine()
    yield client
    client.close()
