"""A PostgreSQL major upgrade on a real engine, as an operator makes it: `images.postgres` set to the
next major version and one `pulumi up`. Synapse's data comes through, the old cluster is kept, a
second up changes nothing, and going back a major version is refused before anything stops.

One `dev` stack (Synapse without the proxy and VoiceGrow) starts on PostgreSQL 15 and is upgraded
to 17 (Debian bookworm's and trixie's), in file order. Ports 18950-18959 (moved by the clone's offset).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.harness import ApplyError
from tests.e2e.matrix_client import Conversation, converse, read_messages
from tests.e2e.stacks import (
    LOCAL_IMAGES,
    NEXT_POSTGRES_IMAGE,
    ChangedStack,
    assert_second_up_changes_nothing,
    deployed_stack,
    host_ports,
    local_overrides,
    record_figure,
)

pytestmark = pytest.mark.e2e

PREFIX = "e2e-pgupgrade"
PORT = host_ports(18950)
BASE_URL = f"http://127.0.0.1:{PORT}"
BASE = {"proxy": {"enabled": False}, "voicegrow": {"enabled": False}}
POSTGRES = f"{PREFIX}-synapse-postgres"


@dataclass(frozen=True)
class Upgraded:
    """The upgraded stack and a conversation written before the upgrade."""

    stack: ChangedStack
    conversation: Conversation


@pytest.fixture(scope="module")
def upgraded() -> Iterator[Upgraded]:
    with deployed_stack("dev", local_overrides(PREFIX, PORT, BASE), "postgres_upgrade") as applied:
        changed = ChangedStack(applied, PREFIX, PORT, BASE)
        conversation = converse(BASE_URL)
        started = time.monotonic()
        changed.update({"images": {"postgres": NEXT_POSTGRES_IMAGE}})
        record_figure("e2e", "postgres_upgrade.15_to_17_up", time.monotonic() - started)
        yield Upgraded(changed, conversation)


def _psql(engine: docker.DockerClient, query: str) -> str:
    result = run_in(engine.containers.get(POSTGRES), ["psql", "-U", "synapse", "-d", "synapse", "-tAc", query])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_the_server_runs_the_new_major_version(upgraded: Upgraded, engine: docker.DockerClient) -> None:
    assert _psql(engine, "SHOW server_version_num").startswith("17")


def test_synapse_is_healthy_and_serves_the_messages_written_before_the_upgrade(
    upgraded: Upgraded, engine: docker.DockerClient
) -> None:
    for name in ("synapse", "synapse-postgres"):
        assert engine.api.inspect_container(f"{PREFIX}-{name}")["State"]["Health"]["Status"] == "healthy", name
    conversation = upgraded.conversation
    assert conversation.text in read_messages(BASE_URL, conversation.reader, conversation.password, conversation.room_id)


def test_new_users_can_register_and_talk_after_the_upgrade(upgraded: Upgraded) -> None:
    conversation = converse(BASE_URL)
    assert conversation.text in read_messages(BASE_URL, conversation.reader, conversation.password, conversation.room_id)


def test_the_old_cluster_and_the_restored_dump_are_kept_on_the_upgrade_volume(
    upgraded: Upgraded, engine: docker.DockerClient
) -> None:
    listing = run_in(
        engine.containers.get(POSTGRES), ["sh", "-c", "cat /var/lib/postgresql/upgrade/postgres-15/PG_VERSION && ls /var/lib/postgresql/upgrade"]
    )
    assert listing.exit_code == 0, listing.output
    version, *files = listing.output.split()
    assert version == "15"
    assert sorted(files) == ["postgres-15", "synapse-restored.dump"]


def test_a_second_up_after_the_upgrade_changes_nothing(upgraded: Upgraded) -> None:
    assert_second_up_changes_nothing(upgraded.stack.stack, "postgres_upgrade")


def test_going_back_a_major_version_is_refused_and_the_new_server_keeps_running(
    upgraded: Upgraded, engine: docker.DockerClient
) -> None:
    server = engine.api.inspect_container(POSTGRES)["Id"]
    with pytest.raises(ApplyError, match="older than the running 17"):
        upgraded.stack.update({"images": {"postgres": LOCAL_IMAGES["postgres"]}})
    assert engine.api.inspect_container(POSTGRES)["Id"] == server
    assert engine.api.inspect_container(f"{PREFIX}-synapse")["State"]["Running"]
