"""How pulumi-docker inputs (wire form) become Engine API requests; no engine needed."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from .docker_mapping import (
    ContainerPlan,
    map_container,
    map_image,
    map_network,
    map_remote_image,
    map_tag,
    map_volume,
    parse_cpus,
    parse_duration_ns,
    split_image_reference,
    uploads_archive,
)
from .engine import EngineError, require_platform
from .values import SECRET_SIG, SIG_KEY, UnsupportedInput

MB = 1024 * 1024


def container(tmp_path: Path, **inputs: Any) -> ContainerPlan:
    return map_container({"name": "web", "image": "img:1", **inputs}, tmp_path)


def host_config(tmp_path: Path, **inputs: Any) -> dict[str, Any]:
    return container(tmp_path, **inputs).create_body["HostConfig"]


def secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "value": value}


# --- sizes and limits -----------------------------------------------------------------------------


def test_memory_megabytes_become_bytes(tmp_path: Path) -> None:
    assert host_config(tmp_path, memory=512.0)["Memory"] == 512 * MB


def test_memory_reservation_megabytes_become_bytes(tmp_path: Path) -> None:
    assert host_config(tmp_path, memoryReservation=256.0)["MemoryReservation"] == 256 * MB


def test_memory_swap_megabytes_become_bytes(tmp_path: Path) -> None:
    assert host_config(tmp_path, memorySwap=1024.0)["MemorySwap"] == 1024 * MB


def test_memory_swap_minus_one_means_unlimited(tmp_path: Path) -> None:
    assert host_config(tmp_path, memorySwap=-1.0)["MemorySwap"] == -1


def test_shm_size_megabytes_become_bytes(tmp_path: Path) -> None:
    assert host_config(tmp_path, shmSize=64.0)["ShmSize"] == 64 * MB


def test_cpus_decimal_string_becomes_nano_cpus(tmp_path: Path) -> None:
    assert host_config(tmp_path, cpus="0.6")["NanoCpus"] == 600_000_000


def test_cpus_fraction_is_read_like_docker() -> None:
    assert parse_cpus("3/2") == 1_500_000_000


def test_cpus_too_precise_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="cpus"):
        container(tmp_path, cpus="0.0000000001")


def test_cpu_period_and_quota_are_ignored_when_cpus_is_set(tmp_path: Path) -> None:
    config = host_config(tmp_path, cpus="1", cpuPeriod=100000.0, cpuQuota=50000.0)
    assert "CpuPeriod" not in config and "CpuQuota" not in config


def test_cpu_period_and_quota_apply_without_cpus(tmp_path: Path) -> None:
    config = host_config(tmp_path, cpuPeriod=100000.0, cpuQuota=50000.0)
    assert (config["CpuPeriod"], config["CpuQuota"]) == (100000, 50000)


def test_cpu_shares_pass_through(tmp_path: Path) -> None:
    assert host_config(tmp_path, cpuShares=512.0)["CpuShares"] == 512


def test_fractional_integer_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="memory"):
        container(tmp_path, memory=1.5)


# --- health check ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [("30s", 30_000_000_000), ("1m30s", 90_000_000_000), ("500ms", 500_000_000), ("1.5h", 5_400_000_000_000), ("0", 0)],
)
def test_durations_are_read_like_go(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text) == nanoseconds


def test_invalid_duration_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_ns("30 seconds")


def test_healthcheck_durations_become_nanoseconds(tmp_path: Path) -> None:
    plan = container(
        tmp_path,
        healthcheck={"tests": ["CMD", "true"], "interval": "10s", "timeout": "3s", "startPeriod": "1m", "retries": 5.0},
    )
    assert plan.create_body["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 10_000_000_000,
        "Timeout": 3_000_000_000,
        "StartPeriod": 60_000_000_000,
        "Retries": 5,
    }


def test_healthcheck_with_bad_duration_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match=r"healthcheck\.interval"):
        container(tmp_path, healthcheck={"tests": ["CMD", "true"], "interval": "soon"})


def test_wait_and_its_timeout_are_planned(tmp_path: Path) -> None:
    plan = container(tmp_path, wait=True, waitTimeout=120.0)
    assert (plan.wait, plan.wait_timeout_seconds) == (True, 120)


def test_wait_timeout_defaults_to_sixty_seconds(tmp_path: Path) -> None:
    assert container(tmp_path, wait=True).wait_timeout_seconds == 60


def test_must_run_and_start_default_to_true(tmp_path: Path) -> None:
    plan = container(tmp_path)
    assert (plan.must_run, plan.start) == (True, True)


# --- restart, logging, labels, env ----------------------------------------------------------------


def test_restart_policy_name_and_retry_count(tmp_path: Path) -> None:
    config = host_config(tmp_path, restart="on-failure", maxRetryCount=3.0)
    assert config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_restart_policy_defaults_to_no(tmp_path: Path) -> None:
    assert host_config(tmp_path)["RestartPolicy"]["Name"] == "no"


def test_unknown_restart_policy_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="restart"):
        container(tmp_path, restart="sometimes")


def test_log_driver_and_options(tmp_path: Path) -> None:
    config = host_config(tmp_path, logDriver="json-file", logOpts={"max-size": "10m", "max-file": "3"})
    assert config["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}


def test_labels_list_becomes_map(tmp_path: Path) -> None:
    plan = container(tmp_path, labels=[{"label": "app", "value": "web"}, {"label": "tier", "value": "front"}])
    assert plan.create_body["Labels"] == {"app": "web", "tier": "front"}


def test_envs_pass_through(tmp_path: Path) -> None:
    assert container(tmp_path, envs=["A=1", "B=two"]).create_body["Env"] == ["A=1", "B=two"]


def test_command_and_entrypoint(tmp_path: Path) -> None:
    body = container(tmp_path, command=["serve", "--port", "80"], entrypoints=["/bin/app"]).create_body
    assert (body["Cmd"], body["Entrypoint"]) == (["serve", "--port", "80"], ["/bin/app"])


def test_empty_command_part_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="command"):
        container(tmp_path, command=["serve", ""])


def test_user_hostname_and_working_dir(tmp_path: Path) -> None:
    body = container(tmp_path, user="1000:1000", hostname="web", workingDir="/srv").create_body
    assert (body["User"], body["Hostname"], body["WorkingDir"]) == ("1000:1000", "web", "/srv")


def test_stop_signal_and_timeout(tmp_path: Path) -> None:
    body = container(tmp_path, stopSignal="SIGQUIT", stopTimeout=20.0).create_body
    assert (body["StopSignal"], body["StopTimeout"]) == ("SIGQUIT", 20)


# --- host settings --------------------------------------------------------------------------------


def test_init_read_only_and_privileged(tmp_path: Path) -> None:
    config = host_config(tmp_path, init=True, readOnly=True, privileged=True)
    assert (config["Init"], config["ReadonlyRootfs"], config["Privileged"]) == (True, True, True)


def test_tmpfs_sysctls_and_ulimits(tmp_path: Path) -> None:
    config = host_config(
        tmp_path,
        tmpfs={"/run": "rw,size=16m"},
        sysctls={"net.core.somaxconn": "1024"},
        ulimits=[{"name": "nofile", "soft": 1024.0, "hard": 4096.0}],
    )
    assert config["Tmpfs"] == {"/run": "rw,size=16m"}
    assert config["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert config["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]


def test_capabilities_add_and_drop(tmp_path: Path) -> None:
    config = host_config(tmp_path, capabilities={"adds": ["NET_BIND_SERVICE"], "drops": ["ALL"]})
    assert (config["CapAdd"], config["CapDrop"]) == (["NET_BIND_SERVICE"], ["ALL"])


def test_security_opts_pass_through(tmp_path: Path) -> None:
    assert host_config(tmp_path, securityOpts=["no-new-privileges"])["SecurityOpt"] == ["no-new-privileges"]


def test_extra_hosts_and_dns(tmp_path: Path) -> None:
    config = host_config(tmp_path, hosts=[{"host": "db", "ip": "10.0.0.5"}], dns=["1.1.1.1"])
    assert (config["ExtraHosts"], config["Dns"]) == (["db:10.0.0.5"], ["1.1.1.1"])


def test_auto_remove(tmp_path: Path) -> None:
    plan = container(tmp_path, rm=True)
    assert plan.auto_remove and plan.create_body["HostConfig"]["AutoRemove"] is True


# --- ports, volumes, mounts -----------------------------------------------------------------------


def test_port_binds_loopback_when_ip_given(tmp_path: Path) -> None:
    plan = container(tmp_path, ports=[{"internal": 8008.0, "external": 18008.0, "ip": "127.0.0.1"}])
    assert plan.create_body["ExposedPorts"] == {"8008/tcp": {}}
    assert plan.create_body["HostConfig"]["PortBindings"] == {
        "8008/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18008"}]
    }


def test_port_without_ip_binds_all_interfaces(tmp_path: Path) -> None:
    bindings = host_config(tmp_path, ports=[{"internal": 80.0, "external": 8080.0}])["PortBindings"]
    assert bindings == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}


def test_port_without_external_gets_a_random_host_port(tmp_path: Path) -> None:
    bindings = host_config(tmp_path, ports=[{"internal": 53.0, "protocol": "udp"}])["PortBindings"]
    assert bindings == {"53/udp": [{"HostIp": "0.0.0.0", "HostPort": ""}]}


def test_named_volume_becomes_a_bind_of_the_volume(tmp_path: Path) -> None:
    plan = container(tmp_path, volumes=[{"volumeName": "pgdata", "containerPath": "/var/lib/postgresql/data"}])
    assert plan.create_body["HostConfig"]["Binds"] == ["pgdata:/var/lib/postgresql/data:rw"]


def test_read_only_host_path_volume(tmp_path: Path) -> None:
    binds = host_config(tmp_path, volumes=[{"hostPath": "/srv/conf", "containerPath": "/conf", "readOnly": True}])[
        "Binds"
    ]
    assert binds == ["/srv/conf:/conf:ro"]


def test_volume_without_source_is_anonymous(tmp_path: Path) -> None:
    plan = container(tmp_path, volumes=[{"containerPath": "/cache"}])
    assert plan.create_body["Volumes"] == {"/cache": {}} and "Binds" not in plan.create_body["HostConfig"]


def test_volume_mount_with_options(tmp_path: Path) -> None:
    mounts = host_config(
        tmp_path,
        mounts=[
            {
                "type": "volume",
                "source": "media",
                "target": "/media",
                "readOnly": True,
                "volumeOptions": {"noCopy": True},
            }
        ],
    )["Mounts"]
    assert mounts == [
        {"Type": "volume", "Target": "/media", "Source": "media", "ReadOnly": True, "VolumeOptions": {"NoCopy": True}}
    ]


def test_tmpfs_mount_with_size(tmp_path: Path) -> None:
    mounts = host_config(
        tmp_path, mounts=[{"type": "tmpfs", "target": "/tmp", "tmpfsOptions": {"sizeBytes": 1048576.0}}]
    )["Mounts"]
    assert mounts == [{"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1048576}}]


def test_mount_options_of_another_type_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="tmpfsOptions"):
        container(
            tmp_path, mounts=[{"type": "bind", "source": "/a", "target": "/b", "tmpfsOptions": {"sizeBytes": 1.0}}]
        )


# --- networks -------------------------------------------------------------------------------------


def test_container_is_created_on_the_default_bridge_as_the_provider_does(tmp_path: Path) -> None:
    # The provider reads HostConfig.NetworkMode back; anything but "bridge" would differ from its default.
    plan = container(tmp_path, networksAdvanced=[{"name": "backend", "aliases": ["db", "postgres"]}])
    assert plan.create_body["HostConfig"]["NetworkMode"] == "bridge"
    assert "NetworkingConfig" not in plan.create_body


def test_every_network_is_joined_after_create_with_its_aliases(tmp_path: Path) -> None:
    plan = container(tmp_path, networksAdvanced=[{"name": "backend"}, {"name": "frontend", "aliases": ["web"]}])
    assert plan.connect_after_create == [("backend", {}), ("frontend", {"Aliases": ["web"]})]


def test_network_mode_defaults_to_bridge(tmp_path: Path) -> None:
    assert host_config(tmp_path)["NetworkMode"] == "bridge"


def test_static_address_on_a_network(tmp_path: Path) -> None:
    plan = container(tmp_path, networksAdvanced=[{"name": "backend", "ipv4Address": "172.30.0.10"}])
    assert plan.connect_after_create == [("backend", {"IPAMConfig": {"IPv4Address": "172.30.0.10"}})]


# --- uploads --------------------------------------------------------------------------------------


def archive_members(plan: ContainerPlan) -> dict[str, tuple[bytes, int]]:
    with tarfile.open(fileobj=io.BytesIO(uploads_archive(plan.uploads))) as archive:
        return {m.name: (archive.extractfile(m).read(), m.mode) for m in archive.getmembers()}  # type: ignore[union-attr]


def test_upload_content_lands_at_its_path_with_mode_0644(tmp_path: Path) -> None:
    plan = container(tmp_path, uploads=[{"file": "/etc/app/app.conf", "content": "port=80\n"}])
    assert archive_members(plan) == {"etc/app/app.conf": (b"port=80\n", 0o644)}


def test_executable_upload_gets_mode_0744(tmp_path: Path) -> None:
    plan = container(tmp_path, uploads=[{"file": "/start.sh", "content": "#!/bin/sh\n", "executable": True}])
    assert archive_members(plan)["start.sh"][1] == 0o744


def test_upload_permissions_take_precedence_over_executable(tmp_path: Path) -> None:
    plan = container(tmp_path, uploads=[{"file": "/key", "content": "k", "executable": True, "permissions": "0600"}])
    assert archive_members(plan)["key"][1] == 0o600


def test_upload_base64_content_is_decoded(tmp_path: Path) -> None:
    data = bytes(range(256))
    plan = container(tmp_path, uploads=[{"file": "/blob", "contentBase64": base64.b64encode(data).decode()}])
    assert archive_members(plan)["blob"][0] == data


def test_upload_source_is_read_relative_to_the_program(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd").write_text("hi\n")
    plan = container(tmp_path, uploads=[{"file": "/etc/motd", "source": "files/motd"}])
    assert archive_members(plan)["etc/motd"][0] == b"hi\n"


def test_upload_owner_and_group_ids(tmp_path: Path) -> None:
    plan = container(tmp_path, uploads=[{"file": "/f", "content": "x", "owner": "999", "group": "998"}])
    assert (plan.uploads[0].uid, plan.uploads[0].gid) == (999, 998)


def test_upload_needs_exactly_one_content_source(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="exactly one"):
        container(tmp_path, uploads=[{"file": "/f", "content": "a", "contentBase64": "Yg=="}])


def test_secret_upload_content_is_unwrapped(tmp_path: Path) -> None:
    plan = container(tmp_path, uploads=secret([{"file": "/run/secret", "content": secret("hunter2")}]))
    assert archive_members(plan)["run/secret"][0] == b"hunter2"


def test_secret_env_is_unwrapped(tmp_path: Path) -> None:
    assert container(tmp_path, envs=["A=1", secret("PASSWORD=hunter2")]).create_body["Env"] == [
        "A=1",
        "PASSWORD=hunter2",
    ]


# --- what is not understood -----------------------------------------------------------------------


def test_unknown_container_field_is_rejected_by_name(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match=r"gpuCount"):
        container(tmp_path, gpuCount=1)


def test_every_gpu_is_one_device_request_and_other_gpu_forms_are_not_modelled(tmp_path: Path) -> None:
    # The docker CLI's GpuOpts, which the provider hands the value to: "all" is every GPU.
    assert host_config(tmp_path, gpus="all")["DeviceRequests"] == [
        {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert "DeviceRequests" not in host_config(tmp_path)
    with pytest.raises(UnsupportedInput, match=r"gpus"):
        container(tmp_path, gpus="device=0")


def test_unknown_nested_field_is_rejected_by_path(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match=r"healthcheck\.probe"):
        container(tmp_path, healthcheck={"tests": ["CMD", "true"], "probe": "x"})


def test_name_is_required(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="name"):
        map_container({"image": "img:1"}, tmp_path)


# --- networks, volumes, images --------------------------------------------------------------------


def test_network_options() -> None:
    plan = map_network(
        {
            "name": "backend",
            "driver": "bridge",
            "internal": True,
            "attachable": True,
            "labels": [{"label": "stack", "value": "e2e"}],
            "options": {"com.docker.network.bridge.enable_icc": "true"},
            "ipamConfigs": [{"subnet": "172.30.0.0/24", "gateway": "172.30.0.1"}],
        }
    )
    assert plan.name == "backend"
    assert plan.create_kwargs == {
        "check_duplicate": True,
        "driver": "bridge",
        "internal": True,
        "attachable": True,
        "labels": {"stack": "e2e"},
        "options": {"com.docker.network.bridge.enable_icc": "true"},
        "ipam": {"Driver": "default", "Config": [{"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.1"}]},
    }


def test_volume_driver_options_and_labels() -> None:
    plan = map_volume(
        {"name": "data", "driver": "local", "driverOpts": {"type": "tmpfs"}, "labels": [{"label": "a", "value": "b"}]}
    )
    assert (plan.name, plan.driver, plan.driver_opts, plan.labels) == ("data", "local", {"type": "tmpfs"}, {"a": "b"})


def test_remote_image_accepts_pull_options() -> None:
    assert map_remote_image({"name": "postgres:15", "keepLocally": True, "pullTriggers": ["x"]}).name == "postgres:15"


def test_image_dockerfile_defaults_to_the_context(tmp_path: Path) -> None:
    plan = map_image(
        {"imageName": "app:1", "skipPush": True, "build": {"context": "app", "args": {"V": "1"}}}, tmp_path
    )
    assert (plan.context, plan.dockerfile, plan.build_args) == (
        tmp_path / "app",
        tmp_path / "app" / "Dockerfile",
        {"V": "1"},
    )


def test_image_dockerfile_is_relative_to_the_program(tmp_path: Path) -> None:
    plan = map_image(
        {"imageName": "app:1", "skipPush": True, "build": {"context": "app", "dockerfile": "docker/App.dockerfile"}},
        tmp_path,
    )
    assert plan.dockerfile == tmp_path / "docker" / "App.dockerfile"


def test_image_push_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedInput, match="skipPush"):
        map_image({"imageName": "app:1", "build": {"context": "."}}, tmp_path)


def test_tag_source_and_target() -> None:
    plan = map_tag({"sourceImage": "app:1", "targetImage": "registry:5000/app:stable"})
    assert split_image_reference(plan.target_image) == ("registry:5000/app", "stable")


def test_remote_image_and_build_carry_the_platform_asked(tmp_path: Path) -> None:
    assert map_remote_image({"name": "postgres:15", "platform": "linux/arm64"}).platform == "linux/arm64"
    build = {"context": ".", "platform": "linux/arm64"}
    assert map_image({"imageName": "app:1", "skipPush": True, "build": build}, tmp_path).platform == "linux/arm64"


@pytest.mark.parametrize(("platform", "fits"), [(None, True), ("linux/amd64", True), ("linux/arm64", False)])
def test_an_image_present_for_another_platform_is_refused(platform: str | None, fits: bool) -> None:
    image = {"Os": "linux", "Architecture": "amd64"}
    if fits:
        require_platform(image, platform, "image 'postgres:15'")
    else:
        with pytest.raises(EngineError, match="linux/amd64, not the platform asked for"):
            require_platform(image, platform, "image 'postgres:15'")
