"""Safe changes under mocks: a backup and the password changes come before a data service is replaced;
replicas are replaced one at a time."""

from __future__ import annotations

import pytest

from components.rendering.synapse import postgres_password_sql
from components.rendering.voicegrow import mysql_accounts_sql
from tests.unit.conftest import Evaluate, Registration

COMMAND = "command:local:Command"
GUARD = "backup-before-change"
# Synapse and the servers come after PostgreSQL and MySQL, so after the backup too.
DATA_CONTAINERS = ["synapse-postgres", "voicegrow-mysql", "voicegrow-redis", "voicegrow-minio"]


def _commands(evaluate: Evaluate, stack: str, overrides: dict | None = None) -> dict:
    return {command.name: command for command in evaluate(stack, overrides=overrides).mocks.of_type(COMMAND)}


@pytest.mark.parametrize("stack", ["test", "staging", "prod"])
def test_stacks_with_backups_back_up_before_a_change(evaluate: Evaluate, stack: str) -> None:
    assert GUARD in _commands(evaluate, stack)


def test_dev_without_backups_has_no_backup_before_a_change(evaluate: Evaluate) -> None:
    assert GUARD not in _commands(evaluate, "dev")


def test_the_backup_before_a_change_can_be_turned_off(evaluate: Evaluate) -> None:
    assert GUARD not in _commands(evaluate, "prod", {"backup": {"before_changes": False}})


def test_the_backup_before_a_change_runs_in_the_backup_container_and_names_its_archive(evaluate: Evaluate) -> None:
    script = _commands(evaluate, "prod")[GUARD].value("create")
    assert "docker exec selfhosted-prod-backup backup-now --before-change" in script
    # The first deploy has no backup container yet: nothing to back up, and that is no failure.
    assert "does not exist yet: nothing to do'; exit 0" in script


@pytest.mark.parametrize("container", DATA_CONTAINERS)
def test_data_containers_are_replaced_only_after_the_one_backup(
    evaluate: Evaluate, registrations: dict[str, Registration], container: str
) -> None:
    evaluate("prod")
    assert GUARD in registrations[container].dependencies


@pytest.mark.parametrize("container", ["synapse", "voicegrow-server-1", "voicegrow-server-2"])
def test_clients_of_the_databases_are_replaced_after_them(
    evaluate: Evaluate, registrations: dict[str, Registration], container: str
) -> None:
    evaluate("prod")
    assert registrations[container].dependencies & {"synapse-postgres", "voicegrow-mysql"}


def test_the_backup_runs_again_only_when_a_data_container_would_be_replaced(evaluate: Evaluate) -> None:
    before = _commands(evaluate, "prod")[GUARD].value("triggers")
    memory = _commands(evaluate, "prod", {"resources": {"mysql": {"memory": "3000M"}}})[GUARD]
    image = _commands(evaluate, "prod", {"images": {"mysql": "mysql:8.4.10"}})[GUARD]
    # A memory raise updates the container in place; an image change replaces it.
    assert memory.value("triggers") == before
    assert image.value("triggers") != before


def test_giving_the_servers_the_gpus_replaces_them_after_a_backup(evaluate: Evaluate) -> None:
    before = _commands(evaluate, "prod")[GUARD].value("triggers")
    on_gpu = _commands(evaluate, "prod", {"voicegrow": {"asr": {"device": "cuda"}}})[GUARD].value("triggers")
    assert on_gpu != before


def test_a_password_change_reaches_the_running_database_before_the_database_is_replaced(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    evaluate("prod")
    assert "synapse-postgres-password" in registrations["synapse-postgres"].dependencies
    assert "voicegrow-mysql-passwords" in registrations["voicegrow-mysql"].dependencies
    # The backup before it still uses the old passwords.
    assert GUARD in registrations["voicegrow-mysql-passwords"].dependencies
    assert GUARD in registrations["synapse-postgres-password"].dependencies


def test_password_changes_come_on_stdin_never_on_a_command_line(evaluate: Evaluate) -> None:
    commands = _commands(evaluate, "prod", {})
    for name in ("synapse-postgres-password", "voicegrow-mysql-passwords"):
        assert "ALTER" in commands[name].value("stdin"), name
        assert "ALTER" not in commands[name].value("create"), name


def test_replicas_are_replaced_one_at_a_time(evaluate: Evaluate, registrations: dict[str, Registration]) -> None:
    # The second waits until the first is healthy and the proxy has reloaded after it.
    evaluate("prod")
    assert "voicegrow-server-1-proxy-reload" in registrations["voicegrow-server-2"].dependencies
    assert "voicegrow-server-1" in registrations["voicegrow-server-1-proxy-reload"].dependencies


def test_a_replicas_proxy_reload_waits_for_synapses_routed_containers(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    # nginx refuses to load a configuration whose upstream (a worker being replaced) does not resolve.
    evaluate("prod")
    for replica in (1, 2):
        dependencies = registrations[f"voicegrow-server-{replica}-proxy-reload"].dependencies
        assert {"synapse", "synapse-wellknown", "synapse-media1", "synapse-sync1"} <= dependencies


def test_the_proxy_starts_after_the_replicas_and_their_reloads(evaluate: Evaluate, registrations: dict[str, Registration]) -> None:
    evaluate("prod")
    assert {"voicegrow-server-2", "voicegrow-server-2-proxy-reload"} <= registrations["proxy"].dependencies


def test_postgres_password_sql_quotes_the_password() -> None:
    assert postgres_password_sql("it's") == "ALTER ROLE synapse PASSWORD 'it''s';\n"


def test_mysql_accounts_sql_quotes_both_passwords_and_takes_roots_login_from_the_network() -> None:
    sql = mysql_accounts_sql("a'b", "c\\d")
    assert "ALTER USER 'voicegrow'@'%' IDENTIFIED BY 'a\\'b';" in sql
    assert "ALTER USER 'root'@'localhost' IDENTIFIED BY 'c\\\\d';" in sql
    assert "DROP USER IF EXISTS 'root'@'%';" in sql
    assert "'root'@'%' IDENTIFIED" not in sql


UPGRADE_DUMP, UPGRADE_RESTORE = "synapse-postgres-upgrade-dump", "synapse-postgres-upgrade-restore"


def test_a_postgres_major_upgrade_dumps_after_the_backup_and_before_postgres_is_replaced(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    evaluate("prod")
    assert GUARD in registrations[UPGRADE_DUMP].dependencies
    assert UPGRADE_DUMP in registrations["synapse-postgres"].dependencies


def test_a_postgres_major_upgrade_restores_into_the_new_server_before_synapse_runs(
    evaluate: Evaluate, registrations: dict[str, Registration]
) -> None:
    evaluate("prod")
    assert "synapse-postgres" in registrations[UPGRADE_RESTORE].dependencies
    assert UPGRADE_RESTORE in registrations["synapse"].dependencies


def test_the_upgrade_steps_run_again_only_when_the_postgres_image_changes(evaluate: Evaluate) -> None:
    before = _commands(evaluate, "prod")
    memory = _commands(evaluate, "prod", {"resources": {"postgres": {"memory": "3000M"}}})
    image = _commands(evaluate, "prod", {"images": {"postgres": "postgres:17.6-bookworm"}})
    for name in (UPGRADE_DUMP, UPGRADE_RESTORE):
        assert memory[name].value("triggers") == before[name].value("triggers"), name
        assert image[name].value("triggers") != before[name].value("triggers"), name


def test_postgres_keeps_the_upgrade_volume_beside_its_data(evaluate: Evaluate) -> None:
    volumes = evaluate("prod").container("synapse-postgres").value("volumes")
    assert {"volumeName": "selfhosted-prod-synapse-postgres-upgrade", "containerPath": "/var/lib/postgresql/upgrade"} in volumes
