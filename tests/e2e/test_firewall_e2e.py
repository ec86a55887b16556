"""The host firewall on a real ufw and iptables, applied over real SSH to a stand-in Debian VPS.

The program is evaluated for `prod` with `docker.host` on the stand-in (so the firewall is on by
default); the remote command it declares is run, exactly as declared, by the harness's SSH runner.
The stand-in publishes 80, 443 and 5432 as Docker does (DNAT to a container behind docker0: the
5432 of an operator who published a database on every address, as the guides do) and serves 9100
on the host itself; another container then tries each port.
"""

from __future__ import annotations

import shlex
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.e2e.container_exec import run_in
from tests.e2e.harness import apply_program
from tests.e2e.harness.commands import CommandFailed, CommandResult, remote_command_spec, run_script
from tests.e2e.stacks import BASE_IMAGE, ROOT, record_figure
from tests.program import run_program
from tests.unit.mocks import RecordingMocks

pytestmark = pytest.mark.e2e

VPS_IMAGE = "e2e.local/vps:bookworm"
PUBLISHED = (80, 443, 5432)
SSH_PORT = 22
HOST_PORT = 9100
CONNECT_SECONDS = 5
REPLY_SECONDS = 20
# On the stand-in: answers one connection with the address it came from.
PEER_PORT = 9200
ECHO_PEER = (
    "import socket; server = socket.create_server(('', %d)); connection, peer = server.accept(); "
    "connection.sendall(peer[0].encode() + b'\\n')" % PEER_PORT
)
# A program of one remote command, to check how the harness applies it in a `pulumi up`.
NOTE_PROGRAM = textwrap.dedent(
    """
    import pulumi
    from pulumi_command import remote

    config = pulumi.Config()
    note = config.require("note")
    remote.Command(
        "note",
        connection=remote.ConnectionArgs(
            host=config.require("host"), private_key=config.require_secret("key"), host_key=config.require("host_key")
        ),
        create="cat >>/tmp/notes",
        stdin=note,
        triggers=[note],
    )
    """
)
# What the firewall is made of: comparing it before and after an apply shows what the apply changed.
STATE = "iptables -S; iptables -t nat -S; ufw status verbose; ufw show added; cat /etc/ufw/after.rules"


@dataclass(frozen=True)
class Vps:
    container: Any
    address: str
    private_key: str
    host_key: str


@pytest.fixture(scope="module")
def vps(engine: docker.DockerClient) -> Iterator[Vps]:
    key = Ed25519PrivateKey.generate()
    private_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public_key = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    container = engine.containers.run(
        VPS_IMAGE,
        detach=True,
        # ufw and iptables need NET_ADMIN; the Docker-like "container" is a network namespace
        # (SYS_ADMIN, no AppArmor profile to forbid its mount); forwarding is a namespaced sysctl.
        cap_add=["NET_ADMIN", "SYS_ADMIN"],
        security_opt=["apparmor=unconfined"],
        sysctls={"net.ipv4.ip_forward": "1"},
        environment={"AUTHORIZED_KEY": public_key},
    )
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        _run(container, "publish-like-docker " + " ".join(map(str, PUBLISHED)))
        _run(container, f"mkdir -p /srv/host && echo host {HOST_PORT} >/srv/host/index.html && "
                        f"(setsid python3 -m http.server {HOST_PORT} --directory /srv/host >/dev/null 2>&1 </dev/null &)")
        host_key = _wait_for_sshd(container)
        yield Vps(container, address, private_key, host_key)
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def client(engine: docker.DockerClient) -> Iterator[Any]:
    container = engine.containers.run(BASE_IMAGE, ["sleep", "infinity"], detach=True)
    yield container
    container.remove(force=True)


@pytest.fixture(scope="module")
def before(vps: Vps, client: Any) -> dict[int, str | None]:
    """What each port answered before any firewall."""
    return {port: _answer(client, vps.address, port) for port in (SSH_PORT, *PUBLISHED, HOST_PORT)}


@pytest.fixture(scope="module")
def applied(vps: Vps, before: dict[int, str | None]) -> CommandResult:
    return apply_firewall(vps, figure="firewall.first_apply")


def apply_firewall(
    vps: Vps, user: str = "root", firewall: dict[str, Any] | None = None, figure: str | None = None
) -> CommandResult:
    """Evaluate the program for prod on the stand-in and run its firewall command as declared."""
    mocks = RecordingMocks()
    overrides = {
        "docker": {"host": f"ssh://{user}@{vps.address}"},
        "firewall": {"host_key": vps.host_key, **(firewall or {})},
    }
    run_program(mocks, "prod", preview=False, overrides=overrides, secrets={"firewall_ssh_private_key": vps.private_key})
    declared = mocks.named("firewall-rules", "command:remote:Command")
    spec = remote_command_spec(declared.inputs, ROOT)
    assert spec.create is not None
    started = time.monotonic()
    result = run_script(spec, spec.create, "firewall-rules", timeout_seconds=120)
    if figure is not None:
        record_figure("e2e", figure, time.monotonic() - started)
    return result


def _run(container: Any, script: str) -> str:
    result = run_in(container, ["sh", "-c", script])
    assert result.exit_code == 0, f"{script}: exit {result.exit_code}: {result.output}"
    return result.output


def _wait_for_sshd(container: Any) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = run_in(container, ["sh", "-c", "cat /etc/ssh/ssh_host_ed25519_key.pub && pgrep -x sshd"])
        if result.exit_code == 0:
            return " ".join(result.output.split()[:2])
        time.sleep(0.5)
    raise AssertionError("sshd did not start in the stand-in VPS: " + container.logs().decode(errors="replace"))


@dataclass(frozen=True)
class Probe:
    """What one try of a port gave: its answer (None: not reached) and how the try went."""

    answer: str | None
    how: str


def _answer(client: Any, address: str, port: int) -> str | None:
    """What the port answers (see _probe); None when the port is not reached."""
    return _probe(client, address, port).answer


def _probe(client: Any, address: str, port: int) -> Probe:
    """Try the port: its answer is the last line of the reply to an HTTP request, or for SSH the
    server's banner, which it sends before reading anything.

    Reaching and answering are timed apart. The connection must be made within CONNECT_SECONDS (a
    dropped SYN never connects; a lost one is sent again after 1 s and 3 s), while the reply may
    take up to REPLY_SECONDS, since a server on a busy engine can be slow to answer a port the
    firewall let through. SSH is sent nothing: sshd answers anything that is not an SSH banner with
    an error and a connection reset, and the reset's message on stderr could come first. Only
    stdout is the answer; stderr says why a connection failed.
    """
    request = "" if port == SSH_PORT else "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; "
    read = "head -n 1" if port == SSH_PORT else "cat"
    # The watchdog ends the shell if the connection is not made in time; its output goes nowhere,
    # so that the exec's stream closes with the shell and not with the watchdog's sleep.
    script = (
        f"(sleep {CONNECT_SECONDS}; kill $$) >/dev/null 2>&1 & "
        f"exec 3<>/dev/tcp/{address}/{port} || exit 1; kill $!; "
        f"{request}timeout {REPLY_SECONDS} {read} <&3 || true"
    )
    started = time.monotonic()
    result = run_in(client, ["bash", "-c", script], apart=True)
    took = f"{time.monotonic() - started:.1f} s"
    if result.exit_code == 143:
        return Probe(None, f"not connected within {CONNECT_SECONDS} s (took {took})")
    if result.exit_code != 0:
        return Probe(None, f"connection failed, exit {result.exit_code} after {took}: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    return Probe(lines[-1] if lines else "", f"connected, answered after {took}")


def test_before_the_firewall_every_port_answers(before: dict[int, str | None]) -> None:
    assert all(answer is not None for answer in before.values()), before


def test_the_stand_in_sees_the_clients_own_address(vps: Vps, client: Any) -> None:
    """The source-limited rules below are tested only if the stand-in sees who connects. A
    masquerading rule that an earlier engine on the same addresses left in the host's iptables
    would show it the bridge's address instead (scripts/test.sh removes such rules)."""
    _run(vps.container, f"(setsid python3 -c {shlex.quote(ECHO_PEER)} >/dev/null 2>&1 </dev/null &); "
                        f"until ss -ltn | grep -q ':{PEER_PORT} '; do sleep 0.1; done")
    client.reload()
    source = client.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    seen = run_in(client, ["bash", "-c", f"exec 3<>/dev/tcp/{vps.address}/{PEER_PORT} && timeout {REPLY_SECONDS} head -n 1 <&3"])
    assert seen.output.strip() == source, f"the stand-in saw {seen.output.strip()!r} connect, not the client at {source}"


def test_the_apply_reports_ufw_active_with_ssh_and_the_proxys_ports(applied: CommandResult) -> None:
    assert "Status: active" in applied.stdout
    for port in (22, 80, 443):
        assert f"# selfhosted {port}/tcp" in applied.stdout


def test_ssh_still_answers(vps: Vps, client: Any, applied: CommandResult) -> None:
    probe = _probe(client, vps.address, SSH_PORT)
    assert probe.answer is not None and probe.answer.startswith("SSH-2.0-"), probe


@pytest.mark.parametrize("port", [80, 443])
def test_the_proxys_published_ports_answer(vps: Vps, client: Any, applied: CommandResult, port: int) -> None:
    probe = _probe(client, vps.address, port)
    assert probe.answer == f"published {port}", probe


def test_a_published_port_that_is_not_the_stacks_is_dropped(vps: Vps, client: Any, applied: CommandResult) -> None:
    assert _answer(client, vps.address, 5432) is None


def test_a_port_of_the_host_itself_that_is_not_the_stacks_is_dropped(vps: Vps, client: Any, applied: CommandResult) -> None:
    assert _answer(client, vps.address, HOST_PORT) is None


def test_the_host_still_reaches_out(vps: Vps, applied: CommandResult) -> None:
    assert _run(vps.container, "ufw status verbose | grep '^Default:'").strip().startswith("Default: deny (incoming), allow (outgoing)")


def test_a_second_apply_changes_nothing(vps: Vps, applied: CommandResult) -> None:
    first = _run(vps.container, STATE)
    apply_firewall(vps, figure="firewall.second_apply")
    assert _run(vps.container, STATE) == first


def test_a_sudo_user_applies_the_same_firewall(vps: Vps, applied: CommandResult) -> None:
    first = _run(vps.container, STATE)
    apply_firewall(vps, user="deploy")
    assert _run(vps.container, STATE) == first


def test_an_operators_port_opens_for_its_source_and_closes_when_removed(vps: Vps, client: Any, applied: CommandResult) -> None:
    client.reload()
    source = client.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    apply_firewall(vps, firewall={"allow": [{"port": HOST_PORT, "source": source}]})
    opened = _probe(client, vps.address, HOST_PORT)
    # What the stand-in's firewall and listeners were when it was tried, to tell why if it failed.
    state = _run(vps.container, f"ss -ltn; iptables -L ufw-user-input -n -v; ufw status | grep {HOST_PORT}")
    apply_firewall(vps)
    assert opened.answer == f"host {HOST_PORT}", f"from {source}: {opened.how}\n{state}"
    assert _answer(client, vps.address, HOST_PORT) is None
    assert f"{HOST_PORT}" not in _run(vps.container, "ufw show added")


def test_an_ipv6_source_loads_into_ufws_ipv6_rules_and_only_there(vps: Vps, applied: CommandResult) -> None:
    apply_firewall(vps, firewall={"allow": [{"port": HOST_PORT, "source": "2001:db8::/32"}]})
    try:
        status = _run(vps.container, "ufw status")
        ipv6, ipv4 = _run(vps.container, "ip6tables -S DOCKER-USER"), _run(vps.container, "iptables -S DOCKER-USER")
    finally:
        apply_firewall(vps)
    assert "Status: active" in status and f"{HOST_PORT}/tcp" in status and "2001:db8::/32" in status
    assert f"-A DOCKER-USER -s 2001:db8::/32 -p tcp -m conntrack --ctorigdstport {HOST_PORT}" in ipv6
    assert "2001:db8" not in ipv4
    assert "2001:db8" not in _run(vps.container, "ufw status; ip6tables -S DOCKER-USER")


def test_an_apply_restores_docker_user_rules_that_were_flushed(vps: Vps, client: Any, applied: CommandResult) -> None:
    _run(vps.container, "iptables -F DOCKER-USER")
    exposed = _answer(client, vps.address, 5432)
    apply_firewall(vps)
    assert exposed == "published 5432"
    assert _answer(client, vps.address, 5432) is None


def test_a_host_with_another_key_gets_nothing(vps: Vps, applied: CommandResult) -> None:
    first = _run(vps.container, STATE)
    other = Ed25519PrivateKey.generate().public_key()
    wrong = " ".join(other.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode().split()[:2])
    with pytest.raises(CommandFailed, match="(?i)host key verification failed"):
        apply_firewall(vps, firewall={"host_key": wrong, "allow": [{"port": 8443}]})
    assert _run(vps.container, STATE) == first


def test_the_harness_runs_a_remote_command_once_and_again_when_its_trigger_changes(vps: Vps, tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: remote-note\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(NOTE_PROGRAM)
    where = {"host": vps.address, "host_key": vps.host_key}
    stack = apply_program(tmp_path, "dev", {**where, "note": "one;"}, secrets={"key": vps.private_key})
    stack = stack.update({**where, "note": "one;"})
    stack = stack.update({**where, "note": "two;"})
    stack.destroy()
    assert _run(vps.container, "cat /tmp/notes") == "one;two;"
