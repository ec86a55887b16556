"""Every container of a full stack is confined, and `docker inspect` shows none of the stack's secrets.

One stack with every role (Synapse, VoiceGrow with servers that read secret files, the proxy with
self-signed TLS, the backup job) is deployed with configured and generated secrets; the tests
then read each container as anyone in the `docker` group can, and act inside each one.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from config.roles import ROLES as REGISTRY
from tests.e2e.container_exec import run_in
from tests.e2e.harness import AppliedStack, apply_program
from tests.e2e.harness.fixtures import require_engine
from tests.e2e.host_networks import networks_steady
from tests.e2e.stacks import PROBE_IMAGE, ROOT, host_ports, local_overrides, record_figure

pytestmark = pytest.mark.e2e

PREFIX = "e2e-lp"
PORT = host_ports(18910)
# Secrets the operator configures; the others are generated.
CONFIGURED = {"tts_api_key": "ak-configured-tts-key-1234", "tts_secret_key": "sk-configured-tts-secret-5678"}
OVERRIDES = local_overrides(
    PREFIX,
    PORT,
    {
        "synapse": {"server_name": "e2e-lp.test", "public_host": "matrix.e2e-lp.test"},
        "voicegrow": {
            "enabled": True,
            "server_image": PROBE_IMAGE,
            "ws_host": "ws.e2e-lp.test",
            "api_host": "api.e2e-lp.test",
            "secret_files": True,
        },
        "tls": "self-signed",
    },
)
# Docker name suffix -> role, for every long-running container of the stack.
CONTAINER_ROLES = {
    "synapse-postgres": "postgres",
    "synapse": "synapse",
    "synapse-wellknown": "wellknown",
    "voicegrow-mysql": "mysql",
    "voicegrow-redis": "redis",
    "voicegrow-minio": "minio",
    "voicegrow-server-1": "voicegrow_server",
    "proxy": "proxy",
    "backup": "backup",
    "healer": "healer",
}


class CommandLines:
    """Every command line of the host's processes (those in containers too), sampled every 20 ms
    from /proc while it runs: what `ps` on the host would have shown during a deploy."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:
                    pass  # the process ended
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


COMMAND_LINES: list[CommandLines] = []


@pytest.fixture(scope="module")
def stack() -> Iterator[AppliedStack]:
    require_engine()
    with CommandLines() as command_lines:
        applied = apply_program(ROOT, "test", OVERRIDES, secrets=CONFIGURED)
    COMMAND_LINES.append(command_lines)
    try:
        record_figure("e2e", "least_privilege.apply_to_all_healthy", applied.seconds_to_ready)
        yield applied
    finally:
        applied.destroy()


def _secrets(stack: AppliedStack) -> dict[str, str]:
    """Every secret value of the stack: configured, generated, and the proxy's private key."""
    values = {f"configured {name}": value for name, value in CONFIGURED.items()}
    for resource in stack.resources:
        if resource.type == "random:index/randomPassword:RandomPassword":
            values[resource.name] = resource.outputs["result"]
        elif resource.type == "tls:index/privateKey:PrivateKey":
            # One line of the key's body: the inspect document would hold the PEM with escaped newlines.
            values[resource.name] = resource.outputs["privateKeyPem"].splitlines()[1]
    return values


def _strings(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(document, list):
        for item in document:
            yield from _strings(item)
    elif document is not None:
        yield str(document)


def _exec(engine: docker.DockerClient, name: str, script: str) -> tuple[int, str]:
    result = run_in(engine.containers.get(f"{PREFIX}-{name}"), ["sh", "-c", script])
    return result.exit_code, result.output


def test_every_service_is_healthy(stack: AppliedStack, engine: docker.DockerClient) -> None:
    for name in CONTAINER_ROLES:
        assert engine.api.inspect_container(f"{PREFIX}-{name}")["State"]["Health"]["Status"] == "healthy", name


def test_no_inspect_document_holds_a_secret(stack: AppliedStack, engine: docker.DockerClient) -> None:
    secrets = _secrets(stack)
    assert len(secrets) >= 12 and all(len(value) >= 16 for value in secrets.values())
    assert len(stack.containers) > len(CONTAINER_ROLES)  # the services and the containers that prepared their files
    for container in stack.containers:
        document = "\n".join(_strings(engine.api.inspect_container(container)))
        leaked = [name for name, value in secrets.items() if value in document]
        assert not leaked, f"docker inspect {container} shows {', '.join(leaked)}"


def test_no_command_line_on_the_host_held_a_secret_during_the_deploy(stack: AppliedStack) -> None:
    command_lines = COMMAND_LINES[0]
    assert command_lines.samples > 100 and any("docker-entrypoint" in line or "postgres" in line for line in command_lines.seen)
    secrets = _secrets(stack)
    leaked = {name: line for name, value in secrets.items() for line in command_lines.seen if value in line}
    assert not leaked, leaked
    record_figure("e2e", "least_privilege.command_lines_sampled", float(len(command_lines.seen)), f"in {command_lines.samples} samples")


def test_the_servers_read_their_credentials_from_files(stack: AppliedStack) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT + 4}/api/v1/health/detail", timeout=20) as response:
        detail = json.loads(response.read())
    assert all(detail[service]["ok"] for service in ("mysql", "redis", "minio")), detail
    assert "MYSQL_PASSWORD" not in detail["env"] and "MYSQL_PASSWORD_FILE" in detail["env"]


# From the VoiceGrow server (on MySQL's network): 0 logged in, 3 refused by MySQL's accounts.
MYSQL_LOGIN = """
import os, sys, pymysql
try:
    pymysql.connect(host="mysql", user=os.environ["LOGIN_USER"], password=os.environ["LOGIN_PASSWORD"], connect_timeout=20).close()
except pymysql.err.OperationalError as error:
    sys.exit(3 if error.args[0] in (1045, 1130) else 4)
"""


def test_mysql_root_is_refused_from_the_network_even_with_its_password_and_the_backups_account_is_not(
    stack: AppliedStack, engine: docker.DockerClient
) -> None:
    passwords = _secrets(stack)
    server = engine.containers.get(f"{PREFIX}-voicegrow-server-1")
    for user, password, expected in (("root", "mysql-root-password", 3), ("backup", "backup-mysql-password", 0)):
        result = run_in(server, ["python3", "-c", MYSQL_LOGIN], environment={"LOGIN_USER": user, "LOGIN_PASSWORD": passwords[password]})
        assert result.exit_code == expected, (user, result.output)


def test_the_servers_minio_user_uses_its_bucket_and_cannot_reach_another_or_make_a_user(
    stack: AppliedStack, engine: docker.DockerClient
) -> None:
    passwords = _secrets(stack)
    minio = engine.containers.get(f"{PREFIX}-voicegrow-minio")
    root = {"MC_HOST_root": f"http://{passwords['minio-root-user']}:{passwords['minio-root-password']}@127.0.0.1:9000"}
    assert run_in(minio, ["mc", "mb", "--ignore-existing", "root/another-systems-bucket"], environment=root).exit_code == 0
    server = run_in(engine.containers.get(f"{PREFIX}-voicegrow-server-1"), ["sh", "-c", "cat /run/secrets/minio_access_key; echo; cat /run/secrets/minio_secret_key"])
    access_key, secret_key = server.output.split()
    assert secret_key == passwords["minio-app-password"] and secret_key != passwords["minio-root-password"]
    app = {"MC_HOST_app": f"http://{access_key}:{secret_key}@127.0.0.1:9000"}
    assert run_in(minio, ["mc", "ls", "app/voicegrow"], environment=app).exit_code == 0
    for attempt in (["mc", "ls", "app/another-systems-bucket"], ["mc", "mb", "app/a-bucket-of-its-own"]):
        refused = run_in(minio, attempt, environment=app)
        assert refused.exit_code == 1 and "Access Denied" in refused.output, (attempt, refused.output)
    user = run_in(minio, ["sh", "-c", "printf 'intruder-secret-1\\n' | mc admin user add app intruder"], environment=app)
    assert user.exit_code == 1 and "Access Denied" in user.output, user.output


@pytest.mark.parametrize("name", [name for name in CONTAINER_ROLES if name != "backup"])
def test_writing_outside_the_volumes_and_tmpfs_fails(stack: AppliedStack, engine: docker.DockerClient, name: str) -> None:
    # Exit codes only: an exec's output can come back empty when the engine is busy (seen once:
    # exit 1, no message), and the kernel's mount table says why the write failed.
    code, _ = _exec(engine, name, "touch /etc/written-by-a-test")
    assert code != 0
    code, output = _exec(engine, name, "test ! -e /etc/written-by-a-test && grep -Eq '^[^ ]+ / [^ ]+ ro[, ]' /proc/mounts")
    assert code == 0, f"the write went through, or the root filesystem is not mounted read-only: {output}"
    code, output = _exec(engine, name, "touch /tmp/written-by-a-test && rm /tmp/written-by-a-test")
    assert code == 0, output


@pytest.mark.parametrize("name", list(CONTAINER_ROLES))
def test_no_process_holds_or_can_gain_a_capability(stack: AppliedStack, engine: docker.DockerClient, name: str) -> None:
    _, status = _exec(engine, name, "cat /proc/self/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1", name
    assert int(fields["CapAmb"], 16) == int(fields["CapInh"], 16) == 0, name
    # Only the policy's capabilities remain in the bounding set (none but the backup job's).
    assert bin(int(fields["CapBnd"], 16)).count("1") == len(REGISTRY[CONTAINER_ROLES[name]].security.capabilities), name
    if name != "backup":
        assert int(fields["CapEff"], 16) == 0, name


def test_root_without_capabilities_cannot_take_a_file(stack: AppliedStack, engine: docker.DockerClient) -> None:
    # The server image runs as root: with every capability dropped, root cannot act as root.
    code, output = _exec(engine, "voicegrow-server-1", "id -u && touch /tmp/mine && chown 1234 /tmp/mine")
    # stdout and stderr arrive interleaved in either order.
    assert "0" in output.splitlines() and code != 0 and "Operation not permitted" in output, output


def test_secret_files_belong_to_the_service_user_alone(stack: AppliedStack, engine: docker.DockerClient) -> None:
    for name, path in (
        ("synapse-postgres", "/run/secrets/postgres_password"),
        ("synapse", "/config/pgpass"),
        ("voicegrow-mysql", "/run/secrets/root_password"),
        ("voicegrow-minio", "/run/secrets/root_password"),
        ("voicegrow-redis", "/usr/local/etc/redis/password"),
    ):
        code, output = _exec(engine, name, f"stat -c '%a %u:%g' {path}")
        assert code == 0 and output.strip() == f"400 {REGISTRY[CONTAINER_ROLES[name]].security.user}", (name, output)


@pytest.mark.parametrize("name", list(CONTAINER_ROLES))
def test_each_service_has_its_process_limit(stack: AppliedStack, engine: docker.DockerClient, name: str) -> None:
    host = engine.api.inspect_container(f"{PREFIX}-{name}")["HostConfig"]
    assert host["PidsLimit"] == REGISTRY[CONTAINER_ROLES[name]].security.pids_limit, name


def test_a_service_cannot_start_more_processes_than_its_limit(stack: AppliedStack, engine: docker.DockerClient) -> None:
    started = time.monotonic()
    code, output = _exec(engine, "voicegrow-redis", "for i in $(seq 100); do sleep 2 & done; wait")
    assert code != 0 and "fork" in output.lower(), output
    assert time.monotonic() - started < 30


# What an attacker who runs code in the proxy would try: each service by the name the stack gives
# it, and each container's every address, on the port it listens on.
BEHIND = {
    "synapse-postgres": ("postgres", 5432),
    "voicegrow-mysql": ("mysql", 3306),
    "voicegrow-redis": ("redis", 6379),
    "voicegrow-minio": ("minio", 9000),
    "backup": ("backup", 9469),
    "monitoring-prometheus": ("prometheus", 9090),
    "monitoring-alertmanager": ("alertmanager", 9093),
    "monitoring-node-exporter": ("node-exporter", 9100),
}
SERVED = {"synapse": ("synapse", 8008), "voicegrow-server-1": ("server-1", 8000), "synapse-wellknown": ("wellknown", 80)}
CONNECT = """
import json, socket, sys
results = {}
for target in json.loads(sys.argv[1]):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        results[target] = "connected"
    except socket.gaierror:
        results[target] = "no such name"
    except OSError as error:
        results[target] = type(error).__name__
print(json.dumps(results))
"""


def _from_the_proxy(engine: docker.DockerClient, targets: list[str]) -> dict[str, str]:
    """Connections tried inside the proxy's network namespace, as code running in it would."""
    output = engine.containers.run(
        PROBE_IMAGE, ["python3", "-c", CONNECT, json.dumps(targets)], network_mode=f"container:{PREFIX}-proxy", remove=True
    )
    return json.loads(output.decode().strip().splitlines()[-1])


def _addresses(engine: docker.DockerClient, name: str, port: int) -> list[str]:
    networks = engine.api.inspect_container(f"{PREFIX}-{name}")["NetworkSettings"]["Networks"]
    return [f"{network['IPAddress']}:{port}" for network in networks.values() if network["IPAddress"]]


def _isolation(engine: docker.DockerClient) -> str:
    """What keeps Docker's bridge networks apart on this host: each network's bridge, and the
    host's FORWARD and isolation chains (the tests run as root beside the engine)."""
    bridges = {network.name: f"br-{network.id[:12]}" for network in engine.networks.list() if network.name.startswith(f"{PREFIX}-")}
    chains = subprocess.run(
        ["sh", "-c", "iptables -S FORWARD; iptables -S DOCKER-ISOLATION-STAGE-1; iptables -S DOCKER-ISOLATION-STAGE-2"],
        capture_output=True, text=True,
    )
    return f"bridges: {bridges}\n{chains.stdout}{chains.stderr}"


def test_from_inside_the_proxy_only_what_it_serves_can_be_reached(stack: AppliedStack, engine: docker.DockerClient) -> None:
    behind = [f"{alias}:{port}" for alias, port in BEHIND.values()]
    behind += [address for name, (_, port) in BEHIND.items() for address in _addresses(engine, name, port)]
    served = [f"{alias}:{port}" for alias, port in SERVED.values()]
    # Holes in Docker's isolation while another test changes networks are not the stack's.
    with networks_steady():
        results = _from_the_proxy(engine, behind + served)
    print("\nfrom the proxy:\n" + "\n".join(f"  {target:28} {result}" for target, result in results.items()))
    assert {target: results[target] for target in served} == dict.fromkeys(served, "connected")
    reached = [target for target in behind if results[target] == "connected"]
    assert reached == [], f"reachable from the proxy: {reached}\n{_isolation(engine)}"
    record_figure("e2e", "least_privilege.reachable_from_the_proxy", float(len([r for r in results.values() if r == "connected"])), f"of {len(results)} tried")
