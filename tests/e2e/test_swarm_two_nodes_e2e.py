"""A second swarm node: a Docker engine of its own in a network namespace, joined as a worker.

The test engine is the manager, advertised on the host end of a veth pair; the second engine
runs in its own network namespace on the other end and joins over it. Proven here: the worker
joins and is ready, and an overlay network carries a request from a container on the manager
to a service task on the worker (VXLAN between the namespaces, on the swarm's data-path port).

The program's overlays are encrypted (IPsec ESP, AES-GCM). Between nodes that needs the kernel's
ESP and GCM support (CONFIG_INET_ESP, CONFIG_CRYPTO_GCM) and, on a swarm whose data-path port is
not 4789 (this harness gives each engine its own), an engine with the fix of moby/moby#45635
(backported to 23.0 and 24.0; 20.10 matches only port 4789 in the encryption's XFRM policy, so
it encrypts nothing and the peer drops what it gets). Where either is missing
the encrypted case is skipped with the reason; the receiving node then drops the network's
unencrypted VXLAN packets (its iptables INPUT rule), so nothing crosses in the clear.
Ports: none on the host; the namespace's subnet is 192.168.(200 + clone offset / 1000).0/30.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.e2e.harness.swarm import swarm_manager
from tests.e2e.host_networks import changing_networks
from tests.e2e.stacks import PORT_OFFSET, PROBE_IMAGE

pytestmark = pytest.mark.e2e

PREFIX = "e2e-swarm2"
OCTET = 200 + (PORT_OFFSET // 1000) % 50
NAMESPACE = f"n2-{OCTET}"
HOST_VETH, NAMESPACE_VETH = f"n2h-{OCTET}", f"n2n-{OCTET}"
HOST_ADDRESS, NAMESPACE_ADDRESS = f"192.168.{OCTET}.1", f"192.168.{OCTET}.2"
WORKER_IMAGES = (PROBE_IMAGE,)
ESP_AEAD = "rfc4106(gcm(aes))"
"""The algorithm Docker's encrypted overlay programs its security associations with."""


@dataclass(frozen=True)
class TwoNodes:
    worker: docker.DockerClient
    manager_id: str
    worker_id: str
    data_path_port: int


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, capture_output=True, text=True)


@contextlib.contextmanager
def _namespace() -> Iterator[None]:
    """A network namespace linked to the host by a veth pair of its own /30."""
    _run("ip", "netns", "add", NAMESPACE)
    try:
        _run("ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NAMESPACE_VETH)
        _run("ip", "link", "set", NAMESPACE_VETH, "netns", NAMESPACE)
        _run("ip", "addr", "add", f"{HOST_ADDRESS}/30", "dev", HOST_VETH)
        _run("ip", "link", "set", HOST_VETH, "up")
        inside = ("ip", "netns", "exec", NAMESPACE)
        _run(*inside, "ip", "addr", "add", f"{NAMESPACE_ADDRESS}/30", "dev", NAMESPACE_VETH)
        _run(*inside, "ip", "link", "set", NAMESPACE_VETH, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "route", "add", "default", "via", HOST_ADDRESS)
        yield
    finally:
        subprocess.run(["ip", "netns", "del", NAMESPACE], check=False)
        subprocess.run(["ip", "link", "del", HOST_VETH], check=False, capture_output=True)


@contextlib.contextmanager
def _engine_in_namespace(directory: Path) -> Iterator[docker.DockerClient]:
    """A dockerd in the namespace, with its own socket, roots and pidfile under `directory`.

    Only the network namespace is entered (`nsenter --net`): `ip netns exec` would also mount a
    sysfs of its own over /sys, hiding the cgroup hierarchies dockerd needs. Its tasks use the
    images loaded into it without first trying to pull them (the namespace has no registry).
    """
    (directory / "daemon.json").write_text("{}")
    socket = directory / "docker.sock"
    with (directory / "dockerd.log").open("w") as log:
        process = subprocess.Popen(
            [
                "nsenter", f"--net=/run/netns/{NAMESPACE}", "dockerd",
                "-H", f"unix://{socket}", "--data-root", str(directory / "data"), "--exec-root", str(directory / "exec"),
                "--pidfile", str(directory / "docker.pid"), "--config-file", str(directory / "daemon.json"),
            ],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"},
        )
    client = docker.DockerClient(base_url=f"unix://{socket}", version="1.41", timeout=120)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(docker.errors.DockerException, OSError):
                client.ping()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the second dockerd did not answer: {(directory / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout.split()
        for mount in sorted((m for m in mounts if m.startswith(f"{directory}/")), reverse=True):
            subprocess.run(["umount", "--lazy", mount], check=False)


def _load_images(worker_host: str) -> None:
    for image in WORKER_IMAGES:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", worker_host, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
        assert save.stdout is not None
        save.stdout.close()
        assert save.wait() == 0, image


@pytest.fixture(scope="module")
def nodes(engine: docker.DockerClient) -> Iterator[TwoNodes]:
    parent = os.environ.get("E2E_ENGINE_DIR") or None
    with tempfile.TemporaryDirectory(prefix="n2-", dir=parent) as directory, _namespace():
        with _engine_in_namespace(Path(directory)) as worker:
            _load_images(f"unix://{directory}/docker.sock")
            with swarm_manager(engine, advertise_addr=HOST_ADDRESS) as swarm:
                if not swarm.initialised:
                    pytest.skip("the engine was a swarm manager already, advertised where the namespace may not reach it")
                engine.swarm.reload()
                port = swarm.settings.listen_port
                worker.swarm.join(
                    remote_addrs=[f"{HOST_ADDRESS}:{port}"],
                    join_token=engine.swarm.attrs["JoinTokens"]["Worker"],
                    listen_addr=f"{NAMESPACE_ADDRESS}:{port}",
                    advertise_addr=f"{NAMESPACE_ADDRESS}:{port}",
                )
                worker_id = worker.info()["Swarm"]["NodeID"]
                try:
                    yield TwoNodes(worker, swarm.node_id, worker_id, swarm.settings.data_path_port)
                finally:
                    with contextlib.suppress(docker.errors.APIError):
                        worker.swarm.leave(force=True)
                    with contextlib.suppress(docker.errors.APIError):
                        engine.api.remove_node(worker_id, force=True)


def _encryption_unavailable_reason(engine: docker.DockerClient, data_path_port: int) -> str | None:
    """Why an encrypted overlay cannot carry traffic between the nodes here, or None."""
    major = int(engine.version()["Version"].split(".")[0])
    if data_path_port != 4789 and major < 23:
        return (
            f"Docker {engine.version()['Version']} encrypts only VXLAN on port 4789, and the swarm's "
            f"data-path port is {data_path_port} (moby/moby#45635)"
        )
    return _esp_unavailable_reason()


def _esp_unavailable_reason() -> str | None:
    """Why the kernel cannot hold the encrypted overlay's security associations, or None."""
    probe = f"n2-esp-{OCTET}"
    _run("ip", "netns", "add", probe)
    try:
        added = subprocess.run(
            [
                "ip", "netns", "exec", probe, "ip", "xfrm", "state", "add", "src", "10.0.0.1", "dst", "10.0.0.2",
                "proto", "esp", "spi", "0x100", "reqid", "1", "mode", "transport",
                "aead", ESP_AEAD, "0x" + "00" * 20, "64",
            ],
            capture_output=True, text=True,
        )
    finally:
        subprocess.run(["ip", "netns", "del", probe], check=False)
    if added.returncode == 0:
        return None
    return f"the kernel cannot hold an ESP security association with {ESP_AEAD}: {added.stderr.strip()}"


@contextlib.contextmanager
def _service_on(engine: docker.DockerClient, node_id: str, network: str, name: str) -> Iterator[None]:
    engine.services.create(
        PROBE_IMAGE, ["python3", "-m", "http.server", "8080"], name=name, networks=[network],
        constraints=[f"node.id=={node_id}"], endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
        labels={"e2e.module": PREFIX},
    )
    try:
        deadline = time.monotonic() + 90
        while not any(t["Status"]["State"] == "running" for t in engine.api.tasks(filters={"service": name})):
            assert time.monotonic() < deadline, [t["Status"] for t in engine.api.tasks(filters={"service": name})]
            time.sleep(1)
        yield
    finally:
        engine.api.remove_service(name)


def _reach_across(engine: docker.DockerClient, nodes: TwoNodes, encrypted: bool) -> str:
    """A container on the manager requests the service task on the worker over an overlay."""
    kind = "encrypted" if encrypted else "plain"
    with changing_networks():
        network = engine.networks.create(
            f"{PREFIX}-{kind}", driver="overlay", attachable=True, options={"encrypted": ""} if encrypted else None,
            labels={"e2e.module": PREFIX},
        )
    try:
        with _service_on(engine, nodes.worker_id, network.name, f"{PREFIX}-{kind}-server"):
            script = (
                "import urllib.request\n"
                f"print(urllib.request.urlopen('http://{PREFIX}-{kind}-server:8080/', timeout=5).status)"
            )
            output = engine.containers.run(
                PROBE_IMAGE, ["python3", "-c", script], entrypoint=[], network=network.name, remove=True,
                name=f"{PREFIX}-{kind}-client",
            )
            return output.decode().strip()
    finally:
        deadline = time.monotonic() + 30
        while True:
            try:
                with changing_networks():
                    network.remove()
                break
            except docker.errors.APIError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def test_the_second_engine_joins_as_a_ready_worker_on_its_own_address(nodes: TwoNodes, engine: docker.DockerClient) -> None:
    deadline = time.monotonic() + 30
    while engine.api.inspect_node(nodes.worker_id)["Status"]["State"] != "ready" and time.monotonic() < deadline:
        time.sleep(1)
    worker = engine.api.inspect_node(nodes.worker_id)
    assert (worker["Spec"]["Role"], worker["Status"]["State"], worker["Status"]["Addr"]) == ("worker", "ready", NAMESPACE_ADDRESS)
    assert {node["ID"] for node in engine.api.nodes()} == {nodes.manager_id, nodes.worker_id}


def test_an_overlay_carries_requests_between_the_nodes(nodes: TwoNodes, engine: docker.DockerClient) -> None:
    assert _reach_across(engine, nodes, encrypted=False) == "200"


def test_an_encrypted_overlay_carries_requests_between_the_nodes(nodes: TwoNodes, engine: docker.DockerClient) -> None:
    reason = _encryption_unavailable_reason(engine, nodes.data_path_port)
    if reason is not None:
        pytest.skip(reason)
    assert _reach_across(engine, nodes, encrypted=True) == "200"
