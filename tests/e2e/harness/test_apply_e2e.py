"""The harness applies a throwaway program to a real engine as its inputs ask, and takes it away."""

from __future__ import annotations

import contextlib
import io
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from cryptography import x509

from tests.e2e.container_exec import run_in

from .apply import AppliedStack, ApplyError, apply_program
from .planning import Change
from .conftest import write_throwaway_program
from .engine import engine_unavailable_reason

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(engine_unavailable_reason() is not None, reason=str(engine_unavailable_reason())),
]

Program = tuple[Path, dict[str, Any]]


def inspect_container(client: docker.DockerClient, name: str) -> dict[str, Any]:
    return client.api.inspect_container(name)


def gone(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except docker.errors.NotFound:
        return True
    return False


def remove_built_images(client: docker.DockerClient, stack: AppliedStack) -> None:
    for image in stack.images:
        with contextlib.suppress(docker.errors.NotFound):
            client.images.remove(image, force=True)


@pytest.fixture(scope="module")
def applied(
    engine: docker.DockerClient, tiny_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppliedStack, dict[str, Any]]]:
    """The throwaway program applied once for the read-only checks of this module."""
    program_dir, overrides = write_throwaway_program(tmp_path_factory.mktemp("applied"), tiny_image)
    stack = apply_program(program_dir, "e2e", config_overrides=overrides)
    try:
        yield stack, overrides
    finally:
        stack.destroy()
        remove_built_images(engine, stack)


def web(applied: tuple[AppliedStack, dict[str, Any]], client: docker.DockerClient) -> dict[str, Any]:
    return inspect_container(client, f"harness-web-{applied[1]['suffix']}")


# --- what the container was given -----------------------------------------------------------------


def test_memory_limit_is_the_megabytes_asked(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["HostConfig"]["Memory"] == 64 * 1024 * 1024


def test_memory_reservation_is_the_megabytes_asked(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["HostConfig"]["MemoryReservation"] == 32 * 1024 * 1024


def test_cpu_limit_is_the_fraction_asked(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["HostConfig"]["NanoCpus"] == 500_000_000


def test_restart_policy_is_applied(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_log_driver_and_options_are_applied(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["HostConfig"]["LogConfig"] == {
        "Type": "json-file",
        "Config": {"max-size": "1m", "max-file": "2"},
    }


def test_labels_are_applied_over_the_images(applied: Any, engine: docker.DockerClient) -> None:
    # Docker merges the image's labels into the container's (the provider reads neither back).
    container = web(applied, engine)
    image_labels = engine.api.inspect_image(container["Image"])["Config"]["Labels"] or {}
    assert container["Config"]["Labels"] == {**image_labels, "app": "harness-e2e"}


def test_init_is_applied(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["HostConfig"]["Init"] is True


def test_health_check_is_applied_in_nanoseconds(applied: Any, engine: docker.DockerClient) -> None:
    check = web(applied, engine)["Config"]["Healthcheck"]
    assert (check["Interval"], check["Timeout"], check["StartPeriod"], check["Retries"]) == (
        500_000_000,
        2_000_000_000,
        1_000_000_000,
        3,
    )


def test_container_is_healthy_when_apply_returns(applied: Any, engine: docker.DockerClient) -> None:
    assert web(applied, engine)["State"]["Health"]["Status"] == "healthy"


def test_volume_is_mounted(applied: Any, engine: docker.DockerClient) -> None:
    mounts = web(applied, engine)["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", f"harness-data-{applied[1]['suffix']}", "/data")
    ]


def test_aliases_are_set_on_each_network(applied: Any, engine: docker.DockerClient) -> None:
    suffix = applied[1]["suffix"]
    networks = web(applied, engine)["NetworkSettings"]["Networks"]
    assert set(networks) == {f"harness-backend-{suffix}", f"harness-frontend-{suffix}"}
    assert {"web", "www"} <= set(networks[f"harness-backend-{suffix}"]["Aliases"])
    assert "web-front" in networks[f"harness-frontend-{suffix}"]["Aliases"]


def test_secret_env_reaches_the_container_unwrapped(applied: Any, engine: docker.DockerClient) -> None:
    env = web(applied, engine)["Config"]["Env"]
    assert f"DB_PASSWORD={applied[0].outputs['password']}" in env


def test_upload_is_in_place_with_executable_mode(applied: Any, engine: docker.DockerClient) -> None:
    stream, _ = engine.api.get_archive(f"harness-web-{applied[1]['suffix']}", "/usr/local/bin/check.sh")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.getmember("check.sh")
        assert member.mode & 0o777 == 0o744
        assert archive.extractfile(member).read() == b"#!/bin/sh\ntest -f /tmp/ready\n"  # type: ignore[union-attr]


def test_upload_from_an_output_carries_the_certificate(applied: Any, engine: docker.DockerClient) -> None:
    stream, _ = engine.api.get_archive(f"harness-web-{applied[1]['suffix']}", "/etc/web/tls.crt")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        pem = archive.extractfile("tls.crt").read()  # type: ignore[union-attr]
    assert x509.load_pem_x509_certificate(pem).subject.rfc4514_string() == "CN=web.e2e.test"


def test_network_options_and_labels_are_applied(applied: Any, engine: docker.DockerClient) -> None:
    suffix = applied[1]["suffix"]
    backend = engine.api.inspect_network(f"harness-backend-{suffix}")
    frontend = engine.api.inspect_network(f"harness-frontend-{suffix}")
    assert (backend["Labels"], backend["Internal"], frontend["Internal"]) == ({"purpose": "e2e"}, False, True)


# --- what the program got back --------------------------------------------------------------------


def test_container_outputs_reach_the_program(applied: Any, engine: docker.DockerClient) -> None:
    stack, overrides = applied
    networks = web(applied, engine)["NetworkSettings"]["Networks"]
    assert stack.outputs["web_name"] == f"harness-web-{overrides['suffix']}"
    assert stack.outputs["web_backend_ip"] == networks[f"harness-backend-{overrides['suffix']}"]["IPAddress"]


def test_command_ran_with_its_environment(applied: Any) -> None:
    assert applied[0].outputs["note"] == "hello:24"


def test_command_output_with_secret_input_is_secret(applied: Any) -> None:
    assert "note" in applied[0].secret_outputs


def test_random_password_honours_its_inputs_and_is_secret(applied: Any) -> None:
    password = applied[0].outputs["password"]
    assert len(password) == 24 and password.isalnum() and "password" in applied[0].secret_outputs


def test_built_image_ran_with_its_build_args(applied: Any) -> None:
    assert (applied[0].outputs["greeting_logs"], applied[0].outputs["greeting_exit_code"]) == (
        "hello from the image\n",
        0,
    )


def test_created_objects_are_listed(applied: Any) -> None:
    stack, overrides = applied
    suffix = overrides["suffix"]
    assert set(stack.containers) == {f"harness-web-{suffix}", f"harness-greeting-{suffix}"}
    assert set(stack.networks) == {f"harness-backend-{suffix}", f"harness-frontend-{suffix}"}
    assert stack.volumes == [f"harness-data-{suffix}"]


def test_timings_cover_the_wait_for_health(applied: Any) -> None:
    stack = applied[0]
    web_ready = stack.ready_after("web")
    assert 0 < web_ready <= stack.seconds_to_ready <= stack.duration_seconds
    # The check passes on its first run after the 1 s start period at the earliest.
    assert web_ready - next(t.started for t in stack.timings if t.name == "web") >= 0.4


# --- lifecycle ------------------------------------------------------------------------------------


def test_destroy_removes_containers_networks_and_volumes(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    program_dir, overrides = throwaway_program
    stack = apply_program(program_dir, "e2e", config_overrides=overrides)
    try:
        stack.destroy()
        api = engine.api
        assert all(gone(api.inspect_container, name) for name in stack.containers)
        assert all(gone(api.inspect_network, name) for name in stack.networks)
        assert all(gone(api.inspect_volume, name) for name in stack.volumes)
    finally:
        stack.destroy()
        remove_built_images(engine, stack)


def test_destroy_runs_command_deletes(throwaway_program: Program, engine: docker.DockerClient) -> None:
    program_dir, overrides = throwaway_program
    with apply_program(program_dir, "e2e", config_overrides=overrides) as stack:
        pass
    remove_built_images(engine, stack)
    assert (Path(str(overrides["markerDir"])) / f"deleted-{overrides['suffix']}").read_text() == "deleted\n"


def test_destroy_can_keep_volumes(throwaway_program: Program, engine: docker.DockerClient) -> None:
    program_dir, overrides = throwaway_program
    try:
        stack = apply_program(program_dir, "e2e", config_overrides=overrides, keep_volumes=True)
        stack.destroy()
        remove_built_images(engine, stack)
        assert not gone(engine.api.inspect_volume, f"harness-data-{overrides['suffix']}")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_volume(f"harness-data-{overrides['suffix']}", force=True)


def read_file(client: docker.DockerClient, container: str, path: str) -> str:
    return run_in(client.containers.get(container), ["cat", path]).output


def test_reapply_keeps_volume_data_passwords_and_names(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    program_dir, overrides = throwaway_program
    web_name = f"harness-web-{overrides['suffix']}"
    with apply_program(program_dir, "e2e", config_overrides=overrides) as first:
        first_start = read_file(engine, web_name, "/data/first-start")
        second = first.reapply()
        assert read_file(engine, web_name, "/data/first-start") == first_start
        assert second.outputs["password"] == first.outputs["password"]
        assert second.containers[web_name] != first.containers[web_name]
    remove_built_images(engine, second)
    assert gone(engine.api.inspect_volume, f"harness-data-{overrides['suffix']}")


def test_module_state_is_fresh_for_each_apply(throwaway_program: Program, engine: docker.DockerClient) -> None:
    program_dir, overrides = throwaway_program
    with apply_program(program_dir, "e2e", config_overrides=overrides) as first:
        assert first.outputs["runs_seen_by_module"] == 1
        second = first.reapply(config_overrides={**overrides, "web": {"greeting": "again"}})
        assert (second.outputs["runs_seen_by_module"], second.outputs["note"]) == (1, "again:24")
    remove_built_images(engine, second)


# --- failures -------------------------------------------------------------------------------------


def write_program(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Pulumi.yaml").write_text("name: harness-failing\nruntime: python\n")
    (directory / "Pulumi.e2e.yaml").write_text("config: {}\n")
    (directory / "__main__.py").write_text(textwrap.dedent(body))
    return directory


def test_unhealthy_container_fails_apply_with_its_health_log_and_logs(
    tmp_path: Path, tiny_image: str, engine: docker.DockerClient
) -> None:
    name = f"harness-sick-{tmp_path.name[-8:]}"
    program_dir = write_program(
        tmp_path / "sick",
        f"""
        import pulumi_docker as docker
        docker.Container(
            "sick",
            name="{name}",
            image="{tiny_image}",
            command=["sh", "-c", "echo starting up; exec sleep 600"],
            network_mode="none",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", "echo database unreachable >&2; exit 1"], interval="300ms", retries=2
            ),
            wait=True,
            wait_timeout=3,
        )
        """,
    )
    with pytest.raises(ApplyError) as failure:
        apply_program(program_dir, "e2e")
    message = str(failure.value)
    assert f"container '{name}' did not become healthy within 3s" in message
    assert "database unreachable" in message and "starting up" in message
    assert gone(engine.api.inspect_container, name)


def test_unknown_input_fails_apply_naming_it(
    tmp_path: Path, tiny_image: str, engine: docker.DockerClient
) -> None:
    name = f"harness-unknown-{tmp_path.name[-8:]}"
    program_dir = write_program(
        tmp_path / "unknown",
        f"""
        import pulumi_docker as docker
        docker.Container("gpu", name="{name}", image="{tiny_image}", gpus="device=0")
        """,
    )
    with pytest.raises(ApplyError, match=r"Container 'gpu': input not supported by the harness .*: gpus"):
        apply_program(program_dir, "e2e")
    assert gone(engine.api.inspect_container, name)


def test_every_gpu_asked_on_a_host_without_one_fails_with_the_engines_reason(
    tmp_path: Path, tiny_image: str, engine: docker.DockerClient
) -> None:
    """The request reaches the engine as the provider sends it; this host has no GPU, so Docker
    refuses to start the container, and the apply fails with Docker's reason."""
    name = f"harness-gpu-{tmp_path.name[-8:]}"
    program_dir = write_program(
        tmp_path / "gpu",
        f"""
        import pulumi_docker as docker
        docker.Container("gpu", name="{name}", image="{tiny_image}", command=["sleep", "60"], gpus="all")
        """,
    )
    with pytest.raises(ApplyError, match=r"could not select device driver .* with capabilities: \[\[gpu\]\]"):
        apply_program(program_dir, "e2e")
    assert gone(engine.api.inspect_container, name)


def test_program_exception_fails_apply_and_removes_what_was_created(
    tmp_path: Path, engine: docker.DockerClient
) -> None:
    network = f"harness-partial-{tmp_path.name[-8:]}"
    program_dir = write_program(
        tmp_path / "raises",
        f"""
        import pulumi_docker as docker
        docker.Network("net", name="{network}")
        raise RuntimeError("settings are inconsistent")
        """,
    )
    with pytest.raises(ApplyError, match="RuntimeError: settings are inconsistent"):
        apply_program(program_dir, "e2e")
    assert gone(engine.api.inspect_network, network)


def test_failed_apply_removes_the_volumes_it_created_even_when_keeping_volumes(
    tmp_path: Path, engine: docker.DockerClient
) -> None:
    volume = f"harness-orphan-{tmp_path.name[-8:]}"
    program_dir = write_program(
        tmp_path / "orphan",
        f"""
        import pulumi_docker as docker
        data = docker.Volume("data", name="{volume}")
        docker.Container("db", name="{volume}-db", image="e2e.local/not-built:0", volumes=[
            docker.ContainerVolumeArgs(volume_name=data.name, container_path="/data")
        ])
        """,
    )
    with pytest.raises(ApplyError, match="not-built"):
        apply_program(program_dir, "e2e", keep_volumes=True)
    assert gone(engine.api.inspect_volume, volume)


def test_missing_image_fails_apply_naming_it(tmp_path: Path) -> None:
    program_dir = write_program(
        tmp_path / "noimage",
        """
        import pulumi_docker as docker
        docker.RemoteImage("postgres", name="e2e.local/not-built:0")
        """,
    )
    with pytest.raises(ApplyError, match=r"image 'e2e\.local/not-built:0' is not present"):
        apply_program(program_dir, "e2e")


def test_unsupported_resource_type_fails_apply_naming_it(tmp_path: Path) -> None:
    program_dir = write_program(
        tmp_path / "pet",
        """
        import pulumi_random as random
        random.RandomPet("pet")
        """,
    )
    with pytest.raises(ApplyError, match="resource type 'random:index/randomPet:RandomPet'"):
        apply_program(program_dir, "e2e")


# --- concurrency and the deploy fixture -----------------------------------------------------------


def test_independent_containers_become_healthy_in_parallel(tmp_path: Path, tiny_image: str) -> None:
    suffix = tmp_path.name[-8:]
    containers = "\n".join(
        f"""
        docker.Container(
            "slow{index}",
            name="harness-slow{index}-{suffix}",
            image="{tiny_image}",
            command=["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 600"],
            network_mode="none",
            healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", "test", "-f", "/tmp/ready"], interval="200ms"),
            wait=True,
            wait_timeout=20,
        )"""
        for index in range(8)
    )
    program_dir = write_program(tmp_path / "slow", "import pulumi_docker as docker\n" + textwrap.dedent(containers))
    with apply_program(program_dir, "e2e") as stack:
        assert len(stack.containers) == 8
        # Eight waits of about 2 s each: serialised they would take 16 s or more.
        assert stack.seconds_to_ready < 8


def test_deploy_fixture_returns_the_applied_stack(
    deploy: Any, throwaway_program: Program, engine: docker.DockerClient
) -> None:
    program_dir, overrides = throwaway_program
    stack = deploy(program_dir, "e2e", config_overrides=overrides)
    try:
        assert engine.api.inspect_container(f"harness-web-{overrides['suffix']}")["State"]["Running"]
    finally:
        remove_built_images(engine, stack)


# --- a second `pulumi up` -------------------------------------------------------------------------


def _described(changes: list[Change]) -> list[tuple[str, str, list[str]]]:
    return [(change.name, change.action, [prop.name for prop in change.properties]) for change in changes]


def test_second_up_reports_what_the_provider_stored_differently(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    # Docker reports the swap it chose (twice the memory) and the provider stores it; the
    # program left it unset, so the next up would update the container.
    program_dir, overrides = throwaway_program
    with apply_program(program_dir, "e2e", config_overrides=overrides) as stack:
        assert _described(stack.plan()) == [("web", "update", ["memorySwap"])]
    remove_built_images(engine, stack)


def test_second_up_with_every_value_in_the_providers_format_changes_nothing(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    program_dir, overrides = throwaway_program
    stated = {**overrides, "web": {"memory_swap": 128}}
    with apply_program(program_dir, "e2e", config_overrides=stated) as stack:
        assert stack.plan() == []
    remove_built_images(engine, stack)


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        ({"cpus": "1"}, ("web", "replace", ["cpus"])),
        ({"interval": "1000ms"}, ("web", "replace", ["healthcheck"])),
    ],
    ids=["cpus-1-stored-as-1.0", "interval-1000ms-stored-as-1s"],
)
def test_second_up_replaces_what_is_written_otherwise_than_stored(
    throwaway_program: Program, engine: docker.DockerClient, web: dict[str, Any], expected: tuple[str, str, list[str]]
) -> None:
    program_dir, overrides = throwaway_program
    written = {**overrides, "web": {"memory_swap": 128, **web}}
    with apply_program(program_dir, "e2e", config_overrides=written) as stack:
        assert _described(stack.plan()) == [expected]
    remove_built_images(engine, stack)


def test_raising_memory_in_place_fails_when_the_swap_limit_is_left_to_docker(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    # The provider's update sends no swap limit then; Docker keeps 2 x 64 MB and refuses 256 MB.
    program_dir, overrides = throwaway_program
    with apply_program(program_dir, "e2e", config_overrides=overrides) as stack:
        with pytest.raises(ApplyError, match="(?i)memoryswap"):
            stack.update({**overrides, "web": {"memory": 256}})
    remove_built_images(engine, stack)


def test_changing_only_memory_updates_the_running_container_in_place(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    program_dir, overrides = throwaway_program
    web_name = f"harness-web-{overrides['suffix']}"
    with apply_program(program_dir, "e2e", config_overrides={**overrides, "web": {"memory_swap": 128}}) as first:
        second = first.update({**overrides, "web": {"memory": 256, "memory_swap": 512}})
        assert _described(second.changes) == [("web", "update", ["memory", "memorySwap"])]
        host = engine.api.inspect_container(web_name)["HostConfig"]
        assert (second.containers[web_name], host["Memory"], host["MemorySwap"]) == (
            first.containers[web_name],
            256 * 1024 * 1024,
            512 * 1024 * 1024,
        )
        assert second.plan() == []
    remove_built_images(engine, second)


def test_changing_a_health_check_reaches_the_running_container(
    throwaway_program: Program, engine: docker.DockerClient
) -> None:
    # replace_on_changes: the provider's update would leave the running container's check as it was.
    program_dir, overrides = throwaway_program
    web_name = f"harness-web-{overrides['suffix']}"
    with apply_program(program_dir, "e2e", config_overrides={**overrides, "web": {"memory_swap": 128}}) as first:
        second = first.update({**overrides, "web": {"memory_swap": 128, "interval": "1s"}})
        assert _described(second.changes) == [("web", "replace", ["healthcheck"])]
        assert second.containers[web_name] != first.containers[web_name]
        assert engine.api.inspect_container(web_name)["Config"]["Healthcheck"]["Interval"] == 1_000_000_000
    remove_built_images(engine, second)
