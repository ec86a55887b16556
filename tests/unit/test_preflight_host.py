"""The facts the preflight reads from this machine, read for real."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.models import PublishedPort
from preflight import checks, host


@pytest.fixture
def listening() -> Iterator[int]:
    """A port a program listens on, on 127.0.0.1."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def test_a_listening_socket_is_seen(listening: int) -> None:
    assert host.Listener("127.0.0.1", listening) in host.listeners()


def test_a_taken_port_blocks_the_deploy(listening: int) -> None:
    published = PublishedPort("synapse.http_port", "synapse.http_bind", "127.0.0.1", listening)
    [finding] = checks.ports([published], host.listeners(), set())
    assert finding.level == "blocking"


def test_a_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    published = PublishedPort("synapse.http_port", "synapse.http_bind", "127.0.0.1", free)
    [finding] = checks.ports([published], host.listeners(), set())
    assert finding.level == "ok"


def test_an_ipv6_listener_is_decoded() -> None:
    if not socket.has_ipv6 or not Path("/proc/net/tcp6").exists():
        pytest.skip("no IPv6 on this machine")
    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::1", 0))
        server.listen()
        assert host.Listener("::1", server.getsockname()[1]) in host.listeners()


def test_a_host_name_that_does_not_resolve_here_resolves_to_nothing() -> None:
    assert host.resolve("matrix.preflight.invalid") == []


def test_localhost_resolves_to_this_machine() -> None:
    [finding] = checks.dns(["localhost"], host.resolve, host.local_addresses())
    assert finding.level == "ok"


def test_a_public_address_behind_nat_can_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHOSTED_PUBLIC_ADDRESSES", "203.0.113.7, 2001:db8::7")
    assert {"203.0.113.7", "2001:db8::7"} <= host.local_addresses()


def test_memory_and_swap_are_read_in_mb(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        2014208 kB\nMemFree:          100000 kB\nSwapTotal:       1048572 kB\n")
    assert host.memory(meminfo) == host.Memory(total_mb=1967, swap_mb=1023)


def test_free_disk_is_read_at_the_nearest_existing_parent(tmp_path: Path) -> None:
    assert host.free_mb(str(tmp_path / "not" / "yet")) > 0
