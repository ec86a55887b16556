"""The README's first command on a fresh Debian machine (no Docker, no Pulumi): it installs, checks and deploys.

The machine is a container of the Debian base image; an HTTP server on this host stands
in for Pulumi's download locations (a test archive whose `pulumi` records its calls and the state
backend each was given). The command runs with a wrong checksum (refused, nothing installed), with
the right one (all installed, preflight passed, `pulumi up` run), again (nothing downloaded or
installed), with a team's S3-compatible state backend (without the team's passphrase: stopped;
with a KMS key: deployed there), and with a port taken.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.e2e.container_exec import run_in
from tests.e2e.stacks import host_ports

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "e2e.local/base:bookworm"
FIRST_COMMAND = "scripts/deploy.sh dev"
VERSION = "3.253.0"
ARCHIVE = f"pulumi-v{VERSION}-linux-x64.tar.gz"
PORT = host_ports(18800)
PLUGIN_SERVER = "http://plugins.mirror.invalid/releases"
TEAM_BACKEND = "s3://pulumi-state/selfhosted?endpoint=minio.example.com:9000&region=us-east-1"
TEAM_STATE = {"PULUMI_BACKEND_URL": TEAM_BACKEND, "AWS_ACCESS_KEY_ID": "team-key", "AWS_SECRET_ACCESS_KEY": "team-secret"}
KMS = "hashivault://selfhosted"
FORGET_PASSPHRASES = "rm -rf /root/.config/selfhosted; "
TAKE_PORT = "timeout 120 python3 -c 'import socket, time; s = socket.socket(); s.bind((\"127.0.0.1\", 8008)); s.listen(); time.sleep(120)'"


def stand_in_archive() -> bytes:
    """pulumi-v<version>-linux-x64.tar.gz as Pulumi lays it out (pulumi/pulumi), with the stand-in CLI."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(ROOT / "tests" / "e2e" / "deploy" / "pulumi", arcname="pulumi/pulumi")
    return buffer.getvalue()


class Mirror(http.server.ThreadingHTTPServer):
    """Serves the test archive under /sdk/ and records every path asked for."""

    def __init__(self, archive: bytes) -> None:
        self.archive = archive
        self.requests: list[str] = []
        super().__init__(("0.0.0.0", PORT), MirrorHandler)


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    server: Mirror

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.server.requests.append(self.path)
        if self.path != f"/sdk/{ARCHIVE}":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.archive)))
        self.end_headers()
        self.wfile.write(self.server.archive)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Run:
    exit_code: int
    output: str
    requests: list[str]
    calls: list[str]
    """The stand-in CLI's calls during this run."""
    backends: list[str]
    """The state backend each of those calls was given."""
    pulumi_dir: list[str]
    passphrase_files: list[str]
    """~/.config/selfhosted after the run."""


def repository_archive() -> bytes:
    """The repository's files as a clone has them (tracked and new, not ignored)."""
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in names:
            if (ROOT / name).is_file():
                archive.add(ROOT / name, arcname=f"selfhosted/{name}")
    return buffer.getvalue()


def engine_socket() -> str:
    """The path of the test engine's socket (DOCKER_HOST, or the default)."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")


@pytest.fixture(scope="module")
def machine(engine: docker.DockerClient) -> Iterator[docker.models.containers.Container]:
    """A fresh Debian machine with a clone of the repository in /srv/selfhosted."""
    container = engine.containers.run(
        BASE_IMAGE,
        ["sleep", "infinity"],
        detach=True,
        # No engine can run inside a container on these machines (no privileges): the engine the
        # installed client finds is the test engine, at the socket where Debian's dockerd listens.
        # apt and pip inside reach their servers as this host does (its CA bundle, for pip's HTTPS).
        mounts=[
            docker.types.Mount("/run/docker.sock", engine_socket(), type="bind"),
            docker.types.Mount("/etc/ssl/host-ca.crt", "/etc/ssl/certs/ca-certificates.crt", type="bind", read_only=True),
        ],
        environment={"PIP_CERT": "/etc/ssl/host-ca.crt", "PIP_DEFAULT_TIMEOUT": "180"},
    )
    try:
        container.put_archive("/srv", repository_archive())
        yield container
    finally:
        container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def runs(machine: docker.models.containers.Container) -> dict[str, Run]:
    """The first command run with a wrong checksum, with the right one, once more, with the team's state backend
    (without and with its secrets provider), and with Synapse's port taken."""
    archive = stand_in_archive()
    mirror = Mirror(archive)
    threading.Thread(target=mirror.serve_forever, daemon=True).start()
    gateway = machine.client.api.inspect_container(machine.id)["NetworkSettings"]["Gateway"]
    settings = {
        "SELFHOSTED_PULUMI_DOWNLOAD_URL": f"http://{gateway}:{PORT}/sdk",
        "SELFHOSTED_PULUMI_VERSION": VERSION,
        "SELFHOSTED_PLUGIN_SERVER": PLUGIN_SERVER,
    }
    right = hashlib.sha256(archive).hexdigest()
    wrong = hashlib.sha256(b"another build").hexdigest()
    results = {}
    try:
        for name, checksum, before_command, state in (
            ("wrong checksum", wrong, "", {}),
            ("first", right, "", {}),
            ("second", right, "", {}),
            ("team state without passphrase", right, FORGET_PASSPHRASES, TEAM_STATE),
            ("team state with a KMS key", right, FORGET_PASSPHRASES, {**TEAM_STATE, "PULUMI_SECRETS_PROVIDER": KMS}),
            # Last: the port stays taken for two minutes.
            ("port taken", right, f"{TAKE_PORT} >/dev/null 2>&1 & sleep 1; ", {}),
        ):
            mirror.requests.clear()
            before = len(calls(machine))
            ran = run_in(
                machine,
                ["bash", "-c", f"{before_command}cd /srv/selfhosted && {FIRST_COMMAND}"],
                environment={**settings, "SELFHOSTED_PULUMI_SHA256": checksum, **state},
            )
            results[name] = Run(
                ran.exit_code,
                ran.output,
                list(mirror.requests),
                calls(machine)[before:],
                recorded(machine, "backends")[before:],
                listing(machine, "/root/.pulumi"),
                listing(machine, "/root/.config/selfhosted"),
            )
    finally:
        mirror.shutdown()
        mirror.server_close()
    return results


HOST_BASICS = "cd /srv/selfhosted && scripts/host-basics.sh --timezone Asia/Shanghai --security-upgrades --swap dev"


@pytest.fixture(scope="module")
def host_basics(machine: docker.models.containers.Container, runs: dict[str, Run]) -> list[tuple[int, str]]:
    """scripts/host-basics.sh run twice on the machine after the deploys (swap: this host's memory holds dev)."""
    return [(result.exit_code, result.output) for result in (run_in(machine, ["bash", "-c", HOST_BASICS]) for _ in range(2))]


def recorded(machine: docker.models.containers.Container, name: str) -> list[str]:
    """The lines the stand-in CLI recorded in ~/.pulumi/<name> (calls, backends)."""
    result = run_in(machine, ["cat", f"/root/.pulumi/{name}"])
    return result.output.splitlines() if result.exit_code == 0 else []


def calls(machine: docker.models.containers.Container) -> list[str]:
    return recorded(machine, "calls")


def listing(machine: docker.models.containers.Container, path: str) -> list[str]:
    return run_in(machine, ["bash", "-c", f"ls -A {path} 2>/dev/null"]).output.split()


def pinned_plugins() -> list[str]:
    """`pulumi plugin install` arguments for each provider package (pulumi-*, but the policy SDK) requirements.txt pins."""
    plugins = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        package, _, version = line.partition("==")
        if package.startswith("pulumi-") and package != "pulumi-policy":
            plugins.append(f"plugin install resource {package.removeprefix('pulumi-')} v{version} --server {PLUGIN_SERVER}")
    return plugins


def test_a_wrong_checksum_is_refused_with_a_clear_error(runs: dict[str, Run]) -> None:
    run = runs["wrong checksum"]
    assert run.exit_code != 0
    assert f"{ARCHIVE} from http://" in run.output and "nothing was installed" in run.output


def test_a_wrong_checksum_leaves_no_partial_install(runs: dict[str, Run]) -> None:
    assert runs["wrong checksum"].pulumi_dir == []


def test_the_docker_engine_is_installed_from_debians_packages(runs: dict[str, Run]) -> None:
    assert "installing the Docker engine from Debian GNU/Linux 12 (bookworm)'s packages (docker.io)" in runs["wrong checksum"].output


def test_the_right_checksum_installs_the_cli_from_the_mirror(runs: dict[str, Run]) -> None:
    run = runs["first"]
    assert run.requests == [f"/sdk/{ARCHIVE}"]
    assert "Pulumi CLI v3.253.0-stand-in installed in /root/.pulumi/bin" in run.output


def test_the_plugins_requirements_txt_pins_are_installed_from_the_plugin_server(runs: dict[str, Run]) -> None:
    run = runs["first"]
    installs = [call for call in run.calls if call.startswith("plugin install")]
    assert installs and installs == pinned_plugins(), run.output


def test_the_plugins_are_installed_before_pulumi_up(runs: dict[str, Run]) -> None:
    called = runs["first"].calls
    last_install = max(index for index, call in enumerate(called) if call.startswith("plugin install"))
    assert called.index("up --yes --stack dev") > last_install


def test_the_preflight_passes_on_the_fresh_machine(runs: dict[str, Run]) -> None:
    assert "preflight: OK       ports: every published port is free" in runs["first"].output


def test_a_taken_port_stops_the_deploy_before_pulumi_up(runs: dict[str, Run]) -> None:
    run = runs["port taken"]
    assert run.exit_code != 0
    assert "preflight: BLOCKING ports: port 8008 on 127.0.0.1 (synapse.http_port) is taken" in run.output
    assert not [call for call in run.calls if call.startswith("up")]


def test_the_first_command_deploys(runs: dict[str, Run]) -> None:
    run = runs["first"]
    assert run.exit_code == 0, run.output
    assert "up --yes --stack dev" in run.calls


def test_a_second_run_downloads_nothing(runs: dict[str, Run]) -> None:
    assert runs["second"].requests == []


def test_a_second_run_installs_nothing(runs: dict[str, Run]) -> None:
    run = runs["second"]
    assert run.exit_code == 0, run.output
    assert not [call for call in run.calls if call.startswith("plugin install")]
    assert "installing" not in run.output and "installed" not in run.output


def test_host_basics_set_the_time_zone_and_security_upgrades(
    machine: docker.models.containers.Container, host_basics: list[tuple[int, str]]
) -> None:
    code, output = host_basics[0]
    assert code == 0, output
    assert run_in(machine, ["readlink", "/etc/localtime"]).output.strip() == "/usr/share/zoneinfo/Asia/Shanghai"
    assert 'APT::Periodic::Unattended-Upgrade "1";' in run_in(machine, ["cat", "/etc/apt/apt.conf.d/20auto-upgrades"]).output


def test_host_basics_add_no_swap_where_the_memory_holds_the_stack(host_basics: list[tuple[int, str]]) -> None:
    assert "no swap needed: this machine's memory holds every limit of stack dev" in host_basics[0][1]


def test_host_basics_again_change_nothing(host_basics: list[tuple[int, str]]) -> None:
    code, output = host_basics[1]
    assert code == 0, output
    assert "time zone already Asia/Shanghai" in output and "unattended security upgrades already on" in output


def test_without_a_backend_the_state_is_local(runs: dict[str, Run]) -> None:
    run = runs["first"]
    assert run.backends and set(run.backends) == {"file://~"}
    assert "preflight: OK       state: state in file://~ on this machine" in run.output


def test_without_a_backend_a_passphrase_is_generated_for_the_stack(runs: dict[str, Run]) -> None:
    assert runs["second"].passphrase_files == ["dev.passphrase"]


def test_a_team_backend_without_the_teams_passphrase_stops_before_the_stack_is_touched(runs: dict[str, Run]) -> None:
    run = runs["team state without passphrase"]
    assert run.exit_code != 0
    assert f"preflight: BLOCKING state: the state in {TEAM_BACKEND} is shared" in run.output
    assert not [call for call in run.calls if call.startswith(("stack", "up"))]
    assert run.passphrase_files == []


def test_a_team_backend_deploys_there_with_its_secrets_provider(runs: dict[str, Run]) -> None:
    run = runs["team state with a KMS key"]
    assert run.exit_code == 0, run.output
    assert [call for call in run.calls if call.startswith(("stack", "up"))] == [
        f"stack select --create --secrets-provider {KMS} dev",
        "up --yes --stack dev",
        "stack output --stack dev",
    ]
    assert set(run.backends) == {TEAM_BACKEND}
    assert run.passphrase_files == []


def test_the_team_backends_credentials_are_not_printed(runs: dict[str, Run]) -> None:
    output = runs["team state with a KMS key"].output + runs["team state without passphrase"].output
    assert "team-secret" not in output
