"""The harness applies swarm resources (overlay network, secret, config, service) to a real
single-node swarm as the provider would, plans a second up, updates in place, and takes it away."""

from __future__ import annotations

import itertools
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.e2e.container_exec import run_in

from .apply import AppliedStack, apply_program
from .engine import engine_unavailable_reason
from .swarm import Swarm, swarm_manager

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(engine_unavailable_reason() is not None, reason=str(engine_unavailable_reason())),
]

PROGRAM = '''
"""A throwaway swarm program: encrypted overlay network, secret, config, one service."""

import base64

import pulumi
import pulumi_docker as docker

config = pulumi.Config()
image = config.require("image")
suffix = config.require("suffix")
port = config.require_int("port")
settings = config.get_object("service") or {}

network = docker.Network(
    "net",
    name=f"hx-swarm-net-{suffix}",
    driver="overlay",
    attachable=True,
    options={"encrypted": ""},
    labels=[docker.NetworkLabelArgs(label="purpose", value="hx-e2e")],
    # Docker adds the overlay's vxlanid_list to its options; the provider reads them back.
    opts=pulumi.ResourceOptions(ignore_changes=["options"] if settings.get("ignore_options", True) else []),
)
data = docker.Volume("data", name=f"hx-swarm-data-{suffix}")
password = settings.get("password", "s3cret")
secret = docker.Secret(
    "password",
    name=f"hx-swarm-pw-{suffix}-{len(password)}",
    data=base64.b64encode(password.encode()).decode(),
    labels=[docker.SecretLabelArgs(label="purpose", value="hx-e2e")],
)
page = docker.ServiceConfig(
    "page", name=f"hx-swarm-page-{suffix}", data=base64.b64encode(b"hello from the config\\n").decode()
)
server = (
    'open F, ">/tmp/ok"; close F; '
    '$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; '
    'while ($c = $s->accept) { open P, "</srv/page.txt"; print $c "HTTP/1.0 200 OK\\\\r\\\\n\\\\r\\\\n", <P>; close P; close $c }'
)
service = docker.Service(
    "web",
    name=f"hx-swarm-web-{suffix}",
    labels=[docker.ServiceLabelArgs(label="app", value="hx-e2e")],
    mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=1)),
    task_spec=docker.ServiceTaskSpecArgs(
        container_spec=docker.ServiceTaskSpecContainerSpecArgs(
            image=settings.get("image", image),
            commands=["perl", "-MIO::Socket::INET", "-e"],
            args=[server],
            env={"MODE": "e2e"},
            read_only=True,
            cap_drops=["NET_RAW"],
            hostname="web",
            labels=[docker.ServiceTaskSpecContainerSpecLabelArgs(label="role", value="web")],
            healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                tests=["CMD", "test", "-f", "/tmp/ok"],
                interval=settings.get("interval", "500ms"),
                timeout="2s",
                retries=3,
                start_period="10s",
            ),
            mounts=[
                docker.ServiceTaskSpecContainerSpecMountArgs(
                    type="tmpfs",
                    target="/tmp",
                    tmpfs_options=docker.ServiceTaskSpecContainerSpecMountTmpfsOptionsArgs(
                        size_bytes=16 * 1024 * 1024, mode=0o777
                    ),
                ),
                docker.ServiceTaskSpecContainerSpecMountArgs(type="volume", source=data.name, target="/data"),
            ],
            secrets=[
                docker.ServiceTaskSpecContainerSpecSecretArgs(
                    secret_id=secret.id, secret_name=secret.name, file_name="db_password",
                    file_uid="100", file_gid="101", file_mode=0o400,
                )
            ],
            configs=[
                docker.ServiceTaskSpecContainerSpecConfigArgs(
                    config_id=page.id, config_name=page.name, file_name="/srv/page.txt"
                )
            ],
            stop_grace_period="1s",
        ),
        resources=docker.ServiceTaskSpecResourcesArgs(
            limits=docker.ServiceTaskSpecResourcesLimitsArgs(memory_bytes=64 * 1024 * 1024, nano_cpus=500_000_000),
            reservation=docker.ServiceTaskSpecResourcesReservationArgs(memory_bytes=16 * 1024 * 1024),
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(condition="any", delay="1s", max_attempts=0, window="0s"),
        networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network.id, aliases=["web"])],
        log_driver=docker.ServiceTaskSpecLogDriverArgs(name="json-file", options={"max-size": "1m", "max-file": "2"}),
    ),
    update_config=docker.ServiceUpdateConfigArgs(
        parallelism=1, delay="1s", failure_action="rollback", monitor="2s", max_failure_ratio="0.0",
        # start-first never converges on one node with a host-mode port: the new task finds the port taken.
        order=settings.get("order", "stop-first"),
    ),
    rollback_config=docker.ServiceRollbackConfigArgs(
        parallelism=1, delay="0s", failure_action="pause", monitor="2s", max_failure_ratio="0.0", order="stop-first"
    ),
    endpoint_spec=docker.ServiceEndpointSpecArgs(
        mode="dnsrr",
        ports=[docker.ServiceEndpointSpecPortArgs(target_port=8080, published_port=port, publish_mode="host", protocol="tcp")],
    ),
    converge_config=docker.ServiceConvergeConfigArgs(delay="1s", timeout=settings.get("timeout", "30s")),
)
pulumi.export("service_id", service.id)
pulumi.export("secret_name", secret.name)
'''


@pytest.fixture(scope="module")
def swarm(engine: docker.DockerClient) -> Iterator[Swarm]:
    with swarm_manager(engine) as active:
        yield active


@pytest.fixture(scope="module")
def images(engine: docker.DockerClient) -> Iterator[tuple[str, str]]:
    """Two tags of the base image, so that an image change is a change of reference."""
    base = "e2e.local/base:bookworm"
    try:
        engine.images.get(base)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{base} is not built (tests/e2e/images/build.sh)")
    tag = uuid.uuid4().hex[:8]
    names = (f"e2e.local/hx-swarm-{tag}:1", f"e2e.local/hx-swarm-{tag}:2")
    for name in names:
        repository, version = name.rsplit(":", 1)
        engine.api.tag(base, repository, version)
    yield names
    for name in names:
        engine.api.remove_image(name)


# One host port per program, never the same twice in a run: the module's service is still up while
# the lifecycle tests deploy theirs, and swarm refuses a host-mode port a task already holds. The
# start is random so that a service an interrupted run left behind is unlikely to hold it.
HOST_PORTS = itertools.count(18080 + int(os.environ.get("E2E_PORT_OFFSET", "1000")) + uuid.uuid4().int % 490)


def write_program(tmp_path: Path, image: str) -> tuple[Path, dict[str, Any]]:
    program_dir = tmp_path / "swarm"
    program_dir.mkdir()
    (program_dir / "Pulumi.yaml").write_text("name: hx-swarm\nruntime: python\n")
    (program_dir / "Pulumi.e2e.yaml").write_text("config: {}\n")
    (program_dir / "__main__.py").write_text(PROGRAM)
    return program_dir, {"image": image, "suffix": uuid.uuid4().hex[:8], "port": next(HOST_PORTS)}


@pytest.fixture(scope="module")
def applied(
    swarm: Swarm, images: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppliedStack, dict[str, Any]]]:
    program_dir, overrides = write_program(tmp_path_factory.mktemp("swarm"), images[0])
    stack = apply_program(program_dir, "e2e", config_overrides=overrides)
    try:
        yield stack, overrides
    finally:
        stack.destroy()


def running_container(client: docker.DockerClient, service_id: str) -> str:
    tasks = client.api.tasks(filters={"service": service_id, "desired-state": "running"})
    running = [task for task in tasks if task["Status"]["State"] == "running"]
    assert len(running) == 1, tasks
    return running[0]["Status"]["ContainerStatus"]["ContainerID"]


def file_stat(client: docker.DockerClient, container_id: str, path: str) -> tuple[str, bytes]:
    """"uid:gid:mode" and content of a file in the container (secrets and configs are mounts:
    read them from inside)."""
    container = client.containers.get(container_id)
    owner = run_in(container, ["stat", "-c", "%u:%g:%a", path]).output.strip()
    return owner, run_in(container, ["cat", path]).output.encode()


def test_service_converges_with_one_healthy_task(applied: Any, engine: docker.DockerClient) -> None:
    container = engine.api.inspect_container(running_container(engine, applied[0].outputs["service_id"]))
    assert container["State"]["Health"]["Status"] == "healthy"


def test_secret_file_has_the_uid_gid_and_mode_given(applied: Any, engine: docker.DockerClient) -> None:
    container = running_container(engine, applied[0].outputs["service_id"])
    assert file_stat(engine, container, "/run/secrets/db_password") == ("100:101:400", b"s3cret")


def test_config_file_has_the_default_owner_and_mode(applied: Any, engine: docker.DockerClient) -> None:
    container = running_container(engine, applied[0].outputs["service_id"])
    assert file_stat(engine, container, "/srv/page.txt") == ("0:0:444", b"hello from the config\n")


def test_host_mode_port_answers_on_the_host(applied: Any) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{applied[1]['port']}/", timeout=5) as response:
        assert response.read() == b"hello from the config\n"


def test_limits_and_overlay_network_are_applied(applied: Any, engine: docker.DockerClient) -> None:
    stack, overrides = applied
    container = engine.api.inspect_container(running_container(engine, stack.outputs["service_id"]))
    network = engine.api.inspect_network(f"hx-swarm-net-{overrides['suffix']}")
    assert (container["HostConfig"]["Memory"], container["HostConfig"]["NanoCpus"]) == (64 * 1024 * 1024, 500_000_000)
    assert (network["Driver"], network["Options"].get("encrypted"), network["Attachable"]) == ("overlay", "", True)
    assert f"hx-swarm-net-{overrides['suffix']}" in container["NetworkSettings"]["Networks"]


def test_second_identical_up_plans_no_change(applied: Any) -> None:
    assert applied[0].plan() == []


def test_overlay_network_options_read_back_would_replace_the_network(applied: Any) -> None:
    # Without ignore_changes, "options" (ForceNew, read back with Docker's vxlanid_list) differ.
    stack, overrides = applied
    planned = stack.plan({**overrides, "service": {"ignore_options": False}})
    assert [(change.name, change.action) for change in planned] == [("net", "replace")]
    assert "com.docker.network.driver.overlay.vxlanid_list" in planned[0].properties[0].stored


def described(changes: list[Any]) -> list[tuple[str, str, list[str]]]:
    return [(change.name, change.action, [prop.name for prop in change.properties]) for change in changes]


def test_one_minute_written_as_go_prints_it_plans_an_update(applied: Any) -> None:
    # shortDur stores 60 s as "1m": "1m0s" in the program differs from the state on every up.
    stack, overrides = applied
    planned = stack.plan({**overrides, "service": {"interval": "1m0s"}})
    assert described(planned) == [("web", "update", ["taskSpec.containerSpec.healthcheck.interval"])]


# --- lifecycle ------------------------------------------------------------------------------------


def test_image_change_updates_the_service_in_place_and_destroy_removes_all(
    swarm: Swarm, images: tuple[str, str], tmp_path: Path, engine: docker.DockerClient
) -> None:
    program_dir, overrides = write_program(tmp_path, images[0])
    first = apply_program(program_dir, "e2e", config_overrides=overrides)
    try:
        service_id = first.outputs["service_id"]
        second = first.update({**overrides, "service": {"image": images[1]}})
        assert described(second.changes) == [("web", "update", ["taskSpec.containerSpec.image"])]
        service = engine.api.inspect_service(service_id)
        assert service["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == images[1]
        task = engine.api.tasks(filters={"service": service_id, "desired-state": "running"})[0]
        assert (task["Spec"]["ContainerSpec"]["Image"], task["Status"]["State"]) == (images[1], "running")
        assert second.plan() == []
    finally:
        (first.successor or first).destroy()
    api = engine.api
    left = []
    for check, name in (
        (api.inspect_service, f"hx-swarm-web-{overrides['suffix']}"),
        (api.inspect_network, f"hx-swarm-net-{overrides['suffix']}"),
        (api.inspect_config, f"hx-swarm-page-{overrides['suffix']}"),
        (api.inspect_secret, f"hx-swarm-pw-{overrides['suffix']}-6"),
        (api.inspect_volume, f"hx-swarm-data-{overrides['suffix']}"),
    ):
        try:
            check(name)
            left.append(name)
        except docker.errors.NotFound:
            pass
    assert left == []


def test_new_secret_is_created_before_the_service_moves_to_it_and_the_old_one_goes_last(
    swarm: Swarm, images: tuple[str, str], tmp_path: Path, engine: docker.DockerClient
) -> None:
    program_dir, overrides = write_program(tmp_path, images[0])
    suffix = overrides["suffix"]
    first = apply_program(program_dir, "e2e", config_overrides=overrides)
    try:
        second = first.update({**overrides, "service": {"password": "a-longer-secret"}})
        assert [(change.name, change.action) for change in second.changes] == [("password", "replace"), ("web", "update")]
        container = running_container(engine, second.outputs["service_id"])
        assert file_stat(engine, container, "/run/secrets/db_password")[1] == b"a-longer-secret"
        with pytest.raises(docker.errors.NotFound):
            engine.api.inspect_secret(f"hx-swarm-pw-{suffix}-6")
    finally:
        (first.successor or first).destroy()
