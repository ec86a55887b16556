"""Each preflight finding, triggered on purpose, and its passing case."""

from __future__ import annotations

from datetime import datetime, timezone

from components.images.backup.archives import Projection
from config.models import PublishedPort
from config.profiles import ContainerLimits
from preflight import checks
from preflight.host import Engine, Listener, Memory
from preflight.stack import containers, read_settings
from tests.program import ROOT

TWO_GB_HOST = Memory(total_mb=1967, swap_mb=0)
"""A 2 GB VPS as the kernel reports it (the firmware and kernel keep the rest)."""
PROXY_HTTP = PublishedPort("proxy.http_port", "proxy.bind", "0.0.0.0", 80)
SYNAPSE_HTTP = PublishedPort("synapse.http_port", "synapse.http_bind", "127.0.0.1", 8008)


def guide_stack() -> dict[str, ContainerLimits]:
    """The Synapse guide's host: Synapse on the small profile with the proxy, backups and basic monitoring."""
    settings = read_settings(ROOT, "dev").model_copy(update={"backup": read_settings(ROOT, "test").backup})
    return containers(settings)


def test_the_small_profile_with_proxy_and_backup_reserves_less_than_a_2_gb_host_has_but_caps_more() -> None:
    assert checks.memory("dev", guide_stack(), TWO_GB_HOST).level == "warning"


def test_the_small_profiles_limits_on_a_2_gb_host_ask_for_swap() -> None:
    finding = checks.memory("dev", guide_stack(), TWO_GB_HOST)
    assert "add 1024 MB of swap (`scripts/host-basics.sh --swap dev`)" in finding.message


def test_the_small_profile_fits_a_2_gb_host_with_that_swap() -> None:
    with_swap = Memory(total_mb=1967, swap_mb=checks.swap_mb(guide_stack(), TWO_GB_HOST))
    assert checks.memory("dev", guide_stack(), with_swap).level == "ok"


def test_reservations_beyond_the_hosts_memory_block_the_deploy() -> None:
    finding = checks.memory("test", containers(read_settings(ROOT, "test")), TWO_GB_HOST)
    assert finding.level == "blocking"
    assert "use a host with at least 2656 MB of memory" in finding.message


def test_no_swap_is_needed_when_the_limits_fit_the_memory() -> None:
    assert checks.swap_mb(guide_stack(), Memory(total_mb=4000, swap_mb=0)) == 0


def test_a_port_another_program_listens_on_blocks_the_deploy_naming_its_key() -> None:
    [finding] = checks.ports([PROXY_HTTP], [Listener("0.0.0.0", 80)], set())
    assert finding.level == "blocking"
    assert "port 80 on 0.0.0.0 (proxy.http_port) is taken" in finding.message
    assert "or set proxy.http_port to a free port" in finding.message


def test_a_listener_on_all_addresses_takes_a_port_published_on_one() -> None:
    [finding] = checks.ports([SYNAPSE_HTTP], [Listener("::", 8008)], set())
    assert finding.level == "blocking"


def test_a_listener_on_another_address_leaves_the_port_free() -> None:
    [finding] = checks.ports([SYNAPSE_HTTP], [Listener("10.0.0.5", 8008)], set())
    assert finding.level == "ok"


def test_a_port_the_stacks_own_container_holds_is_free_for_the_redeploy() -> None:
    own = {Listener("0.0.0.0", 80), Listener("::", 80)}
    [finding] = checks.ports([PROXY_HTTP], [Listener("0.0.0.0", 80), Listener("::", 80)], own)
    assert finding.level == "ok"


def test_a_replica_port_names_its_setting() -> None:
    replica = PublishedPort("voicegrow.http_port (replica 2)", "voicegrow.bind", "127.0.0.1", 8001)
    [finding] = checks.ports([replica], [Listener("127.0.0.1", 8001)], set())
    assert "or set voicegrow.http_port to a free port" in finding.message


def test_a_host_that_does_not_resolve_blocks_the_deploy() -> None:
    [finding] = checks.dns(["matrix.example.com"], lambda host: [], {"203.0.113.7"})
    assert finding.level == "blocking"
    assert "matrix.example.com does not resolve" in finding.message


def test_a_host_that_resolves_elsewhere_blocks_the_deploy_naming_the_address() -> None:
    [finding] = checks.dns(["matrix.example.com"], lambda host: ["198.51.100.1"], {"203.0.113.7"})
    assert finding.level == "blocking"
    assert "resolves to 198.51.100.1, which is not this machine" in finding.message


def test_a_host_with_one_record_elsewhere_blocks_the_deploy() -> None:
    [finding] = checks.dns(["matrix.example.com"], lambda host: ["203.0.113.7", "2001:db8::1"], {"203.0.113.7"})
    assert finding.level == "blocking"


def test_a_host_that_resolves_here_passes() -> None:
    [finding] = checks.dns(["matrix.example.com"], lambda host: ["203.0.113.7"], {"203.0.113.7"})
    assert finding.level == "ok"


def test_too_little_disk_blocks_the_deploy() -> None:
    assert checks.disk("/var/lib/docker", free=5000, needed=7168).level == "blocking"


def test_enough_disk_passes() -> None:
    assert checks.disk("/var/lib/docker", free=8000, needed=7168).level == "ok"


def test_the_disk_holds_images_metrics_growth_and_the_archives_at_retention() -> None:
    backups = Projection(copies={"synapse": 2}, part_bytes={"synapse": 2_000_000_000}, run_bytes=1_000_000_000)
    assert checks.disk_needed_mb("1GB", backups) == 4096 + 1024 + 2048 + 3000


def test_without_backups_the_disk_needs_no_room_for_archives() -> None:
    assert checks.disk_needed_mb("1GB", None) == 4096 + 1024 + 2048


PROD_VOLUMES = {"synapse-postgres": 1000.0, "synapse-data": 10000.0, "voicegrow-mysql": 1000.0, "voicegrow-minio": 10000.0,
                "voicegrow-redis": 5.0}
AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_the_backup_projection_takes_each_part_as_large_as_its_volume() -> None:
    settings = read_settings(ROOT, "prod")
    projection = checks.backup_projection(settings.backup, settings.backup_parts(), PROD_VOLUMES, AT)
    assert projection.copies == {"synapse": 48, "mysql": 48, "media": 7, "bucket": 7}
    assert projection.part_bytes["media"] == 7 * 10_000_000_000


def test_a_disk_too_small_for_the_archives_at_retention_names_each_part_and_the_settings() -> None:
    settings = read_settings(ROOT, "prod")
    backups = checks.backup_projection(settings.backup, settings.backup_parts(), PROD_VOLUMES, AT)
    finding = checks.disk("/var/lib/docker", free=200_000, needed=checks.disk_needed_mb("1GB", backups), backups=backups)
    assert finding.level == "blocking"
    assert "media 7 x 10000.0 MB" in finding.message and "synapse 48 x 1000.0 MB" in finding.message
    assert "backup.retention.<part>.keep_count" in finding.message and "backup.part_schedules.<part>" in finding.message


def test_the_archives_already_on_the_disk_count_as_room() -> None:
    assert checks.disk("/var/lib/docker", free=5000, needed=7168, archives_mb=3000).level == "ok"


def test_no_engine_blocks_the_deploy() -> None:
    [finding] = checks.engine(None)
    assert finding.level == "blocking"


def test_an_engine_older_than_20_10_blocks_the_deploy() -> None:
    version, _ = checks.engine(Engine("19.03.15", "overlay2", "/var/lib/docker"))
    assert version.level == "blocking"


def test_debian_12s_engine_passes() -> None:
    version, driver = checks.engine(Engine("20.10.24+dfsg1", "overlay2", "/var/lib/docker"))
    assert (version.level, driver.level) == ("ok", "ok")


def test_a_storage_driver_other_than_overlay2_is_a_warning() -> None:
    _, driver = checks.engine(Engine("26.1.5", "vfs", "/var/lib/docker"))
    assert driver.level == "warning"


def test_gpus_asked_of_an_engine_without_the_nvidia_toolkit_block_the_deploy_saying_how() -> None:
    plain = Engine("26.1.5", "overlay2", "/var/lib/docker", runtimes=("io.containerd.runc.v2", "runc"))
    blocked = checks.gpus(plain, hook_installed=False)
    assert blocked.level == "blocking"
    assert "nvidia-ctk runtime configure --runtime=docker" in blocked.message and "voicegrow.asr.device" in blocked.message
    assert checks.gpus(None, hook_installed=False).level == "blocking"


def test_gpus_pass_with_the_nvidia_runtime_or_its_hook() -> None:
    configured = Engine("26.1.5", "overlay2", "/var/lib/docker", runtimes=("nvidia", "runc"))
    assert checks.gpus(configured, hook_installed=False).level == "ok"
    plain = Engine("26.1.5", "overlay2", "/var/lib/docker", runtimes=("runc",))
    assert checks.gpus(plain, hook_installed=True).level == "ok"


def test_a_clock_out_of_sync_is_a_warning_that_says_how_to_sync_it() -> None:
    finding = checks.clock(False)
    assert finding.level == "warning"
    assert "timedatectl set-ntp true" in finding.message


def test_a_clock_in_sync_passes() -> None:
    assert checks.clock(True).level == "ok"


TEAM_BACKEND = "s3://pulumi-state/selfhosted?endpoint=oss-cn-hangzhou.aliyuncs.com&region=cn-hangzhou"
TEAM_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "LTAI-example", "AWS_SECRET_ACCESS_KEY": "example-secret"}


def test_without_a_backend_the_state_is_local() -> None:
    assert [(f.level, f.message.split(" on ")[0]) for f in checks.state({})] == [("ok", "state in file://~")]


def test_a_team_backend_with_its_key_and_passphrase_passes() -> None:
    environment = {"PULUMI_BACKEND_URL": TEAM_BACKEND, **TEAM_CREDENTIALS, "PULUMI_CONFIG_PASSPHRASE": "team"}
    assert [(f.level, f.message) for f in checks.state(environment)] == [("ok", f"state in {TEAM_BACKEND}")]


def test_a_team_backend_without_its_access_key_blocks_the_deploy() -> None:
    environment = {"PULUMI_BACKEND_URL": TEAM_BACKEND, "PULUMI_CONFIG_PASSPHRASE": "team"}
    blocking = [f.message for f in checks.state(environment) if f.level == "blocking"]
    assert blocking == [
        f"no credentials for {TEAM_BACKEND}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the bucket's access key, "
        "also for MinIO or Aliyun OSS), or AWS_PROFILE"
    ]


def test_a_team_backend_without_the_teams_passphrase_blocks_the_deploy() -> None:
    blocking = [f.message for f in checks.state({"PULUMI_BACKEND_URL": TEAM_BACKEND, **TEAM_CREDENTIALS}) if f.level == "blocking"]
    assert len(blocking) == 1 and "encrypted with the team's passphrase: set PULUMI_CONFIG_PASSPHRASE" in blocking[0]


def test_a_kms_key_replaces_the_passphrase() -> None:
    environment = {"PULUMI_BACKEND_URL": TEAM_BACKEND, **TEAM_CREDENTIALS, "PULUMI_SECRETS_PROVIDER": "hashivault://selfhosted"}
    assert {f.level for f in checks.state(environment)} == {"ok"}


def test_an_s3_backend_without_an_endpoint_warns_that_the_state_goes_to_amazon() -> None:
    environment = {"PULUMI_BACKEND_URL": "s3://pulumi-state", **TEAM_CREDENTIALS, "PULUMI_CONFIG_PASSPHRASE": "team"}
    warnings = [f.message for f in checks.state(environment) if f.level == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("no S3 endpoint given: the state goes to Amazon S3")


def test_the_s3_endpoint_may_come_from_the_aws_variables() -> None:
    environment = {
        "PULUMI_BACKEND_URL": "s3://pulumi-state",
        "AWS_ENDPOINT_URL_S3": "https://minio.example.com:9000",
        **TEAM_CREDENTIALS,
        "PULUMI_CONFIG_PASSPHRASE_FILE": "/run/secrets/passphrase",
    }
    assert {f.level for f in checks.state(environment)} == {"ok"}
