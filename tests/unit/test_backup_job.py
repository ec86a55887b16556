"""BackupJob under mocks: when it exists, what it backs up, how it is built, and that secrets stay secret."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import pytest

from components.backup import MYSQL
from components.images.backup.archives import JOB_PATH, JobDocument
from components.rendering import backup as render
from components.rendering.voicegrow import mysql_as_root
from config import ConfigError
from config.profiles import LARGE, synapse_workers
from tests.unit.conftest import Evaluate, Evaluation, Registration
from tests.stack_config import HOST_KEY

CONTAINER = "docker:index/container:Container"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
BACKUP_STACKS = ("test", "staging", "prod")
MODES = [pytest.param(False, id="up"), pytest.param(True, id="preview")]
ENABLED = {"backup": {"enabled": True}}
RCLONE_CONFIG = "[offsite]\ntype = sftp\nhost = backup.example.com\npass = very-secret\n"


def _backup(evaluation: Evaluation) -> Any:
    return evaluation.container("backup")


def _has_backup(evaluation: Evaluation) -> bool:
    return any(resource.name == "backup" for resource in evaluation.mocks.of_type(CONTAINER))


def _uploads(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    return {upload["file"]: upload for upload in _backup(evaluation).value("uploads")}


def _job(evaluation: Evaluation) -> dict[str, Any]:
    return json.loads(_uploads(evaluation)["/etc/backup/backup.json"]["content"])


@pytest.mark.parametrize("preview", MODES)
@pytest.mark.parametrize("stack", BACKUP_STACKS)
def test_every_stack_but_dev_declares_the_backup_job(evaluate: Evaluate, stack: str, preview: bool) -> None:
    evaluation = evaluate(stack, preview=preview)
    assert [resource.type for resource in evaluation.mocks.declared if resource.name == "backup"] == [
        "selfhosted:components:BackupJob",
        CONTAINER,
    ]


def test_dev_has_no_backup_job_by_default(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev")
    assert not _has_backup(evaluation)
    assert "backup_location" not in evaluation.outputs


def test_dev_gets_a_backup_job_when_asked(evaluate: Evaluate) -> None:
    assert _has_backup(evaluate("dev", overrides=ENABLED))


def test_backups_can_be_turned_off(evaluate: Evaluate) -> None:
    assert not _has_backup(evaluate("prod", overrides={"backup": {"enabled": False}}))


@pytest.mark.parametrize(("stack", "schedule"), [("test", "0 2 * * *"), ("staging", "0 2 * * *"), ("prod", "0 * * * *")])
def test_schedule_follows_the_environment(evaluate: Evaluate, stack: str, schedule: str) -> None:
    assert _job(evaluate(stack))["schedule"] == schedule


def test_schedule_can_be_overridden(evaluate: Evaluate) -> None:
    assert _job(evaluate("prod", overrides={"backup": {"schedule": "15 */4 * * *"}}))["schedule"] == "15 */4 * * *"


@pytest.mark.parametrize("schedule", ["61 * * * *", "0 0 31 2 *", "0 2 * *"])
def test_a_schedule_that_cannot_fire_is_refused_naming_the_key(evaluate: Evaluate, schedule: str) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:backup\.schedule"):
        evaluate("prod", overrides={"backup": {"schedule": schedule}})


def test_the_job_carries_each_parts_retention(evaluate: Evaluate) -> None:
    job = _job(evaluate("prod", overrides={"backup": {"retention": {"media": {"keep_days": 30, "keep_count": 30}}}}))
    assert job["retention"] == {
        "synapse": {"keep_days": 2, "keep_count": 48},
        "mysql": {"keep_days": 2, "keep_count": 48},
        "media": {"keep_days": 30, "keep_count": 30},
        "bucket": {"keep_days": 7, "keep_count": 7},
    }


@pytest.mark.parametrize(("stack", "memory", "cpus"), [("test", 256, 0.25), ("staging", 384, 0.5), ("prod", 512, 1.0)])
def test_limits_come_from_the_profiles_backup_role(evaluate: Evaluate, stack: str, memory: int, cpus: float) -> None:
    container = _backup(evaluate(stack))
    assert (container.value("memory"), float(container.value("cpus"))) == (memory, cpus)


def test_limits_can_be_overridden_like_any_role(evaluate: Evaluate) -> None:
    container = _backup(evaluate("prod", overrides={"resources": {"backup": {"memory": "1G"}}}))
    assert container.value("memory") == 1024


def test_container_restarts_rotates_its_log_and_carries_the_stacks_labels(evaluate: Evaluate) -> None:
    container = _backup(evaluate("prod"))
    assert container.value("restart") == "unless-stopped"
    assert container.value("logOpts") == {"max-size": "10m", "max-file": "3"}
    labels = {label["label"]: label["value"] for label in container.value("labels")}
    assert labels == {"selfhosted.stack": "prod", "selfhosted.component": "backup", "selfhosted.role": "backup"}


def test_health_check_asks_the_backup_tool_whether_the_last_success_is_recent(evaluate: Evaluate) -> None:
    container = _backup(evaluate("prod"))
    assert container.value("healthcheck")["tests"] == ["CMD", "backupctl", "health"]
    assert container.value("wait") is True


def test_container_joins_the_synapse_and_voicegrow_networks(evaluate: Evaluate) -> None:
    networks = [network["name"] for network in _backup(evaluate("prod")).value("networksAdvanced")]
    assert networks == ["selfhosted-prod-synapse", "selfhosted-prod-voicegrow"]


def test_synapse_only_stack_backs_up_synapse_only(evaluate: Evaluate) -> None:
    evaluation = evaluate("dev", overrides=ENABLED)
    job = _job(evaluation)
    assert (job["postgres"] is not None, job["mysql"], job["bucket"]) == (True, None, None)
    assert [network["name"] for network in _backup(evaluation).value("networksAdvanced")] == ["selfhosted-dev-synapse"]


def test_synapse_data_volume_is_mounted_for_media_and_signing_key(evaluate: Evaluate) -> None:
    volumes = _backup(evaluate("prod")).value("volumes")
    assert {"volumeName": "selfhosted-prod-synapse-data", "containerPath": "/synapse-data"} in volumes


def test_archives_go_to_a_named_volume_by_default(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert {"volumeName": "selfhosted-prod-backup", "containerPath": "/backups"} in _backup(evaluation).value("volumes")
    assert evaluation.output("backup_location") == ("selfhosted-prod-backup", False)


def test_archives_go_to_host_path_when_set(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"backup": {"host_path": "/srv/backups"}})
    assert {"hostPath": "/srv/backups", "containerPath": "/backups"} in _backup(evaluation).value("volumes")
    assert not [volume for volume in evaluation.mocks.of_type("docker:index/volume:Volume") if volume.name == "backup-volume"]
    assert evaluation.output("backup_location") == ("/srv/backups", False)


def test_job_points_at_each_service_by_its_alias(evaluate: Evaluate) -> None:
    job = _job(evaluate("prod"))
    assert (job["postgres"]["host"], job["postgres"]["user"], job["postgres"]["database"]) == ("postgres", "synapse", "synapse")
    assert job["mysql"]["database"] == "voicegrow"
    assert job["bucket"]["bucket"] == "voicegrow"
    assert "endpoint = http://minio:9000" in _uploads(evaluate("prod"))["/etc/backup/rclone.conf"]["content"]


def test_restoring_synapse_stops_synapse_only(evaluate: Evaluate) -> None:
    job = _job(evaluate("prod", overrides={"synapse": {"workers": False}}))
    assert job["services"]["synapse"] == ["selfhosted-prod-synapse"]


def test_restoring_synapse_stops_its_main_process_then_its_workers(evaluate: Evaluate) -> None:
    workers = [f"selfhosted-prod-synapse-{worker.name.replace('_', '-')}" for worker in synapse_workers(LARGE.synapse_workers)]
    # prod runs the large profile, with workers by default.
    assert _job(evaluate("prod"))["services"]["synapse"] == ["selfhosted-prod-synapse", *workers]


def test_restoring_media_stops_synapse_and_its_workers(evaluate: Evaluate) -> None:
    job = _job(evaluate("prod"))
    assert job["services"]["media"] == job["services"]["synapse"]


@pytest.mark.parametrize("part", ["mysql", "bucket"])
def test_restoring_a_voicegrow_part_stops_every_voicegrow_server_only(evaluate: Evaluate, part: str) -> None:
    assert _job(evaluate("prod"))["services"][part] == ["selfhosted-prod-voicegrow-server-1", "selfhosted-prod-voicegrow-server-2"]


def test_schedules_are_in_utc_by_default(evaluate: Evaluate) -> None:
    assert _job(evaluate("prod"))["timezone"] == "UTC"


def test_schedules_can_be_read_in_local_time(evaluate: Evaluate) -> None:
    assert _job(evaluate("prod", overrides={"backup": {"timezone": "Asia/Shanghai"}}))["timezone"] == "Asia/Shanghai"


@pytest.mark.parametrize("zone", ["Asia/Beijing", "CST+8", "../etc/passwd"])
def test_a_time_zone_that_is_not_an_iana_name_is_refused_naming_the_key(evaluate: Evaluate, zone: str) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:backup\.timezone.*IANA time zone name like 'Asia/Shanghai'"):
        evaluate("prod", overrides={"backup": {"timezone": zone}})


@pytest.mark.parametrize(("stack", "bulk"), [("test", "0 3 * * 0"), ("prod", "30 3 * * *")])
def test_media_and_the_bucket_have_schedules_of_their_own_by_default(evaluate: Evaluate, stack: str, bulk: str) -> None:
    assert _job(evaluate(stack))["part_schedules"] == {"media": bulk, "bucket": bulk}


def test_parts_can_have_schedules_of_their_own(evaluate: Evaluate) -> None:
    # VoiceGrow guide §6.1: MySQL daily, MinIO weekly.
    job = _job(evaluate("prod", overrides={"backup": {"part_schedules": {"mysql": "0 2 * * *", "bucket": "0 3 * * 0", "media": None}}}))
    assert job["part_schedules"] == {"mysql": "0 2 * * *", "bucket": "0 3 * * 0"}


def test_a_part_schedule_for_a_service_the_stack_lacks_is_left_out(evaluate: Evaluate) -> None:
    job = _job(evaluate("prod", overrides={"voicegrow": {"enabled": False}, "backup": {"part_schedules": {"bucket": "0 3 * * 0"}}}))
    assert job["part_schedules"] == {"media": "30 3 * * *"}
    assert list(job["retention"]) == ["synapse", "media"]


def test_a_part_schedule_for_an_unknown_part_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:backup\.part_schedules\.minio"):
        evaluate("prod", overrides={"backup": {"part_schedules": {"minio": "0 3 * * 0"}}})


def test_a_part_schedule_that_cannot_fire_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:backup\.part_schedules\.bucket"):
        evaluate("prod", overrides={"backup": {"part_schedules": {"bucket": "0 0 31 2 *"}}})


def test_uploads_holding_credentials_are_a_secret_input(evaluate: Evaluate) -> None:
    # Pulumi marks the whole uploads list secret when one file in it is.
    assert _backup(evaluate("prod")).is_secret("uploads")


def test_credential_files_are_readable_by_root_only(evaluate: Evaluate) -> None:
    uploads = _uploads(evaluate("prod"))
    credentials = [path for path in uploads if path != "/etc/backup/backup.json"]
    assert {"/etc/backup/pgpass", "/etc/backup/mysql.cnf", "/etc/backup/rclone.conf"} <= set(credentials)
    for path in credentials:
        assert uploads[path]["permissions"] == "0600", path


def test_credential_files_carry_the_generated_passwords(evaluate: Evaluate) -> None:
    uploads = _uploads(evaluate("prod"))
    assert uploads["/etc/backup/pgpass"]["content"] == "postgres:5432:*:synapse:generated-postgres-password\n"
    assert uploads["/etc/backup/mysql.cnf"]["content"] == '[client]\nhost=mysql\nport=3306\nuser=backup\npassword="generated-backup-mysql-password"\n'
    assert "secret_access_key = generated-minio-root-password" in uploads["/etc/backup/rclone.conf"]["content"]


def test_the_backup_reaches_mysql_with_an_account_of_its_own_made_before_the_job_starts(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    evaluation = evaluate("prod")
    account = evaluation.mocks.named("backup-mysql-account", "command:local:Command")
    assert account.value("create").startswith("docker exec -e BACKUP_PASSWORD selfhosted-prod-voicegrow-mysql sh -c ")
    # What the command does to a real server: tests/rendered/test_database_accounts.py.
    assert shlex.split(account.value("create"))[5:] == mysql_as_root(render.mysql_backup_account_statements(MYSQL), "BACKUP_PASSWORD")
    assert "generated-backup-mysql-password" not in account.value("create")
    assert account.value("environment")["BACKUP_PASSWORD"] == "generated-backup-mysql-password"
    assert "backup-mysql-account" in registrations["backup"].dependencies
    assert "voicegrow-mysql" in registrations["backup-mysql-account"].dependencies


def test_mysql_root_logs_in_inside_its_container_only(evaluate: Evaluate) -> None:
    envs = evaluate("prod").mocks.named("voicegrow-mysql", "docker:index/container:Container").value("envs")
    assert "MYSQL_ROOT_HOST=localhost" in envs


def test_no_password_in_the_job_file_or_the_environment(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert "generated-" not in _uploads(evaluation)["/etc/backup/backup.json"]["content"]
    assert not _backup(evaluation).value("envs")


def test_no_password_in_any_plain_output(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", secrets={"backup_rclone_config": RCLONE_CONFIG}, overrides={"backup": {"offsite": {"enabled": True}}})
    for name in evaluation.outputs:
        value, secret = evaluation.output(name)
        if not secret:
            assert "generated-" not in json.dumps(value) and "very-secret" not in json.dumps(value), name


def test_archived_configuration_includes_homeserver_yaml_readable_by_root_only(evaluate: Evaluate) -> None:
    # Its secrets are files it names; the operator's extra_config may still hold some.
    upload = _uploads(evaluate("prod"))["/etc/backup/configs/synapse/homeserver.yaml"]
    assert "passfile: /config/pgpass" in upload["content"]
    assert upload["permissions"] == "0600"


def test_offsite_copy_is_off_by_default(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert _job(evaluation)["offsite"] is None
    assert "/etc/backup/offsite-rclone.conf" not in _uploads(evaluation)


@pytest.fixture
def offsite_stack(evaluate: Evaluate) -> Callable[..., Evaluation]:
    """`offsite_stack(stack, secrets=None, **offsite settings)`: the stack evaluated with an offsite copy."""

    def run(stack: str = "prod", secrets: dict[str, str] | None = None, **offsite: Any) -> Evaluation:
        return evaluate(
            stack, overrides={"backup": {"enabled": True, "offsite": {"enabled": True, **offsite}}},
            secrets={"backup_rclone_config": RCLONE_CONFIG, **(secrets or {})},
        )

    return run


def test_offsite_copy_uploads_the_rclone_config_as_a_secret(offsite_stack: Callable[..., Evaluation]) -> None:
    evaluation = offsite_stack(remote="offsite:synapse-backups", encrypt=False)
    assert _job(evaluation)["offsite"] == {
        "rclone_config": "/etc/backup/offsite-rclone.conf", "remote": "offsite:synapse-backups/selfhosted-prod",
        "directory": "offsite:synapse-backups/selfhosted-prod", "encrypted": False, "owner": "selfhosted-prod",
        "legacy_remote": "offsite:synapse-backups", "keep_days": 30, "keep_count": 1000,
    }
    upload = _uploads(evaluation)["/etc/backup/offsite-rclone.conf"]
    assert (upload["content"], upload["permissions"]) == (RCLONE_CONFIG, "0600")
    assert _backup(evaluation).is_secret("uploads")


@pytest.mark.parametrize(("remote", "directory"), [
    ("offsite:backups", "offsite:backups/selfhosted-{stack}"),
    ("offsite:backups/", "offsite:backups/selfhosted-{stack}"),
    ("offsite:", "offsite:selfhosted-{stack}"),
])
@pytest.mark.parametrize("stack", BACKUP_STACKS)
def test_each_stack_copies_offsite_into_a_directory_named_for_it(
    offsite_stack: Callable[..., Evaluation], stack: str, remote: str, directory: str
) -> None:
    offsite = _job(offsite_stack(stack, remote=remote))["offsite"]
    assert (offsite["directory"], offsite["owner"]) == (directory.format(stack=stack), f"selfhosted-{stack}")


def test_offsite_copies_are_encrypted_by_default_through_a_crypt_remote_over_the_stacks_directory(
    offsite_stack: Callable[..., Evaluation],
) -> None:
    evaluation = offsite_stack()
    assert (_job(evaluation)["offsite"]["remote"], _job(evaluation)["offsite"]["encrypted"]) == ("offsite-crypt:", True)
    content = _uploads(evaluation)["/etc/backup/offsite-rclone.conf"]["content"]
    assert content.startswith(RCLONE_CONFIG)
    assert content.endswith(render.render_offsite_crypt(
        "offsite:backups/selfhosted-prod", "generated-offsite-password", "generated-offsite-salt"
    ))


def test_offsite_crypt_keys_are_generated_once_and_kept_in_the_state(offsite_stack: Callable[..., Evaluation]) -> None:
    generated = [resource.name for resource in offsite_stack().mocks.of_type(RANDOM_PASSWORD)]
    assert {"offsite-password", "offsite-salt"} <= set(generated)


def test_offsite_crypt_keys_set_as_secrets_replace_the_generated_ones(offsite_stack: Callable[..., Evaluation]) -> None:
    keys = {"backup_offsite_password": "p" * 40, "backup_offsite_salt": "s" * 40}
    evaluation = offsite_stack(secrets=keys)
    generated = [resource.name for resource in evaluation.mocks.of_type(RANDOM_PASSWORD)]
    assert "offsite-password" not in generated and "offsite-salt" not in generated
    crypt = render.render_offsite_crypt("offsite:backups/selfhosted-prod", "p" * 40, "s" * 40)
    assert _uploads(evaluation)["/etc/backup/offsite-rclone.conf"]["content"].endswith(crypt)


def test_unencrypted_offsite_copies_have_no_crypt_keys_section_or_output(offsite_stack: Callable[..., Evaluation]) -> None:
    evaluation = offsite_stack(encrypt=False)
    assert "offsite-password" not in [resource.name for resource in evaluation.mocks.of_type(RANDOM_PASSWORD)]
    assert "offsite-crypt" not in _uploads(evaluation)["/etc/backup/offsite-rclone.conf"]["content"]
    assert "backup_offsite_rclone_section" not in evaluation.outputs


def test_the_crypt_section_is_a_secret_output(offsite_stack: Callable[..., Evaluation]) -> None:
    value, secret = offsite_stack().output("backup_offsite_rclone_section")
    assert secret
    assert value == render.render_offsite_crypt("offsite:backups/selfhosted-prod", "generated-offsite-password", "generated-offsite-salt")


def test_the_offsite_restore_instructions_name_the_directory_the_command_and_the_section_without_a_key(
    offsite_stack: Callable[..., Evaluation],
) -> None:
    evaluation = offsite_stack("staging")
    text, secret = evaluation.output("backup_offsite_restore")
    section, _ = evaluation.output("backup_offsite_rclone_section")
    assert not secret
    assert "offsite:backups/selfhosted-staging" in text and "scripts/restore.sh staging latest --offsite" in text
    assert "backup_offsite_rclone_section" in text
    assert not [line for line in section.splitlines() if line.startswith("password") and line.split(" = ")[1] in text]


def test_no_offsite_output_without_an_offsite_copy(evaluate: Evaluate) -> None:
    outputs = evaluate("prod").outputs
    assert "backup_offsite_restore" not in outputs and "backup_offsite_rclone_section" not in outputs


def test_an_encrypt_setting_that_is_not_a_boolean_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:backup\.offsite\.encrypt"):
        evaluate("prod", overrides={"backup": {"offsite": {"enabled": True, "encrypt": "maybe"}}}, secrets={"backup_rclone_config": RCLONE_CONFIG})


def test_offsite_retention_can_be_overridden(evaluate: Evaluate) -> None:
    offsite = {"enabled": True, "keep_days": 365, "keep_count": 400}
    job = _job(evaluate("prod", overrides={"backup": {"offsite": offsite}}, secrets={"backup_rclone_config": RCLONE_CONFIG}))
    assert (job["offsite"]["keep_days"], job["offsite"]["keep_count"]) == (365, 400)


def test_a_run_is_stopped_after_two_hours_by_default(evaluate: Evaluate) -> None:
    assert _job(evaluate("prod"))["timeout_seconds"] == 7200


def test_the_run_timeout_can_be_overridden(evaluate: Evaluate) -> None:
    assert _job(evaluate("prod", overrides={"backup": {"timeout_minutes": 30}}))["timeout_seconds"] == 1800


def test_a_run_timeout_of_zero_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="selfhosted:backup.timeout_minutes"):
        evaluate("prod", overrides={"backup": {"timeout_minutes": 0}})


def test_offsite_copy_without_its_rclone_config_is_refused_naming_the_secret(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match="backup_rclone_config is required when backup.offsite is enabled"):
        evaluate("prod", overrides={"backup": {"offsite": {"enabled": True}}})


def test_backup_image_is_built_on_the_stacks_postgres_image(evaluate: Evaluate) -> None:
    image = evaluate("prod").mocks.named("backup-image", "docker:index/image:Image")
    assert image.value("build") == {"context": "components/images/backup", "args": {"BASE_IMAGE": "postgres:16.10-bookworm"}}
    assert image.value("skipPush") is True


def test_backup_image_follows_the_postgres_image_setting_and_mirror(evaluate: Evaluate) -> None:
    overrides = {"images": {"postgres": "postgres:17.6-bookworm", "registry_mirrors": {"docker.io": "mirror.example.cn/dockerhub"}}}
    image = evaluate("prod", overrides=overrides).mocks.named("backup-image", "docker:index/image:Image")
    assert image.value("build")["args"] == {"BASE_IMAGE": "mirror.example.cn/dockerhub/library/postgres:17.6-bookworm"}


def test_container_runs_the_built_image(evaluate: Evaluate) -> None:
    assert _backup(evaluate("prod")).value("image") == "selfhosted-prod-backup:local"


def test_exports_how_to_restore_and_how_to_back_up_now(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    assert evaluation.output("backup_restore_command") == ("scripts/restore.sh prod latest", False)
    assert evaluation.output("backup_now_command") == ("docker exec selfhosted-prod-backup backup-now", False)
    assert evaluation.output("backup_schedule") == ("0 * * * *", False)


def test_restore_command_names_a_remote_engine_and_a_custom_prefix(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"docker": {"host": "ssh://deploy@vps.example.com"}, "firewall": {"host_key": HOST_KEY}, "prefix": "chat"})
    assert evaluation.output("backup_restore_command")[0] == (
        "DOCKER_HOST=ssh://deploy@vps.example.com PREFIX=chat scripts/restore.sh prod latest"
    )


# --- Synapse's remote media purge -----------------------------------------------------------------


@pytest.mark.parametrize("stack", BACKUP_STACKS)
def test_remote_media_is_purged_monthly_where_the_backup_job_runs(evaluate: Evaluate, stack: str) -> None:
    assert _job(evaluate(stack))["media_purge"] == {
        "schedule": "0 4 1 * *",
        "max_age_days": 30,
        "synapse_url": "http://synapse:8008",
        "admin_user": "admin",
        "password_file": "/etc/backup/synapse-admin-password",
    }


def test_the_purge_logs_in_with_the_generated_admin_password_readable_by_root_only(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod")
    upload = _uploads(evaluation)["/etc/backup/synapse-admin-password"]
    assert upload["content"] == evaluation.output("synapse_admin_password")[0]
    assert upload["permissions"] == "0600"


def test_the_purge_schedule_and_age_can_be_overridden(evaluate: Evaluate) -> None:
    overrides = {"synapse": {"remote_media_purge": {"schedule": "30 3 * * 0", "max_age_days": 7}}}
    purge = _job(evaluate("prod", overrides=overrides))["media_purge"]
    assert (purge["schedule"], purge["max_age_days"]) == ("30 3 * * 0", 7)


def test_the_purge_can_be_turned_off(evaluate: Evaluate) -> None:
    evaluation = evaluate("prod", overrides={"synapse": {"remote_media_purge": {"enabled": False}}})
    assert _job(evaluation)["media_purge"] is None
    assert "/etc/backup/synapse-admin-password" not in _uploads(evaluation)


def test_asking_for_the_purge_without_the_backup_job_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:synapse\.remote_media_purge\.enabled needs backup\.enabled"):
        evaluate("dev", overrides={"synapse": {"remote_media_purge": {"enabled": True}}})


# --- Synapse's state compression ------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_state_is_compressed_daily_in_staging_and_prod(evaluate: Evaluate, stack: str) -> None:
    assert _job(evaluate(stack))["state_compression"] == {
        "schedule": "30 4 * * *", "chunk_size": 500, "number_of_chunks": 100, "levels": "100,50,25",
    }


def test_state_compression_is_off_in_test_unless_asked(evaluate: Evaluate) -> None:
    assert _job(evaluate("test"))["state_compression"] is None
    assert _job(evaluate("test", overrides={"synapse": {"state_compression": {"enabled": True}}}))["state_compression"] is not None


def test_the_compressors_limits_can_be_overridden(evaluate: Evaluate) -> None:
    overrides = {"synapse": {"state_compression": {"chunk_size": 1000, "number_of_chunks": 20, "levels": "200,100"}}}
    compression = _job(evaluate("prod", overrides=overrides))["state_compression"]
    assert (compression["chunk_size"], compression["number_of_chunks"], compression["levels"]) == (1000, 20, "200,100")


def test_levels_that_are_not_a_list_of_sizes_are_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:synapse\.state_compression\.levels"):
        evaluate("prod", overrides={"synapse": {"state_compression": {"levels": "100, fifty"}}})


def test_asking_for_state_compression_without_the_backup_job_is_refused_naming_the_key(evaluate: Evaluate) -> None:
    with pytest.raises(ConfigError, match=r"selfhosted:synapse\.state_compression\.enabled needs synapse and backup\.enabled"):
        evaluate("dev", overrides={"synapse": {"state_compression": {"enabled": True}}})


def test_the_backup_tool_reads_back_exactly_the_job_file_the_program_writes(evaluate: Evaluate) -> None:
    """One contract (archives.JobDocument) for both sides: every section of a full prod job survives a round trip."""
    evaluation = evaluate("prod", secrets={"backup_rclone_config": RCLONE_CONFIG}, overrides={"backup": {"offsite": {"enabled": True}}})
    written = _uploads(evaluation)[JOB_PATH]["content"]
    job = JobDocument.from_json(written)
    assert job.to_json() == written
    assert all(section is not None for section in (job.postgres, job.mysql, job.bucket, job.offsite, job.media_purge, job.state_compression))
