"""The database accounts the program makes, made for real in PostgreSQL and MariaDB by the
commands it declares: each account logs in with its password and can do what its job needs and
no more, and no password is ever on a command line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.rendering import backup as backup_render
from components.rendering import monitoring as monitoring_render
from components.rendering import synapse as synapse_render
from components.rendering.voicegrow import DATABASE, SECRETS_DIR, mysql_as_root
from tests.rendered.servers import Mariadb, Postgres, running_mariadb, running_postgres

pytestmark = pytest.mark.rendered

# Generated passwords are letters and digits.
PASSWORDS = ("FirstGeneratedPassword1", "SecondGeneratedPassword2")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        # As the official image creates POSTGRES_USER: a superuser owning its database.
        server.sql(f"CREATE ROLE {synapse_render.DATABASE_USER} LOGIN SUPERUSER", database="postgres")
        server.sql(f"CREATE DATABASE {synapse_render.DATABASE_NAME} OWNER {synapse_render.DATABASE_USER}", database="postgres")
        yield server


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mariadb]:
    with running_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        server.sql(f"CREATE DATABASE {DATABASE}; CREATE DATABASE other; CREATE TABLE other.private (secret TEXT)")
        server.sql(f"CREATE FUNCTION {DATABASE}.greeting() RETURNS VARCHAR(16) DETERMINISTIC RETURN 'ni hao'")
        yield server


def _psql_as(postgres: Postgres, user: str, password: str, statement: str) -> subprocess.CompletedProcess[str]:
    """`statement` run over TCP as `user` with `password` (SCRAM)."""
    return subprocess.run(
        [str(postgres.bindir / "psql"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", user, "-d", synapse_render.DATABASE_NAME,
         "-At", "-v", "ON_ERROR_STOP=1", "-c", statement],
        env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True,
    )


def _mariadb_as(mariadb: Mariadb, user: str, password: str, statement: str) -> subprocess.CompletedProcess[str]:
    """`statement` run over TCP as `user` with `password`."""
    return subprocess.run(
        ["mariadb", "-h", "127.0.0.1", "-P", str(mariadb.port), "-u", user, "-N", "-B", "-e", statement],
        env={**os.environ, "MYSQL_PWD": password}, capture_output=True, text=True,
    )


def _run_in_mysql_container(mariadb: Mariadb, command: list[str], environment: dict[str, str], tmp_path: Path) -> list[str]:
    """Run a command declared for the MySQL container against `mariadb`: its `mysql` is a wrapper
    that records its arguments, its root password file one of `tmp_path`. The recorded arguments."""
    shims, calls = tmp_path / "bin", tmp_path / "mysql-calls"
    shims.mkdir(exist_ok=True)
    (shims / "mysql").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >>{calls}\nexec mariadb -S {mariadb.socket_path} "$@"\n')
    (shims / "mysql").chmod(0o755)
    (tmp_path / "root_password").write_text("root-logs-in-by-the-socket")
    script = command[-1].replace(f"{SECRETS_DIR}/root_password", str(tmp_path / "root_password"))
    result = subprocess.run([*command[:-1], script], env={**os.environ, **environment, "PATH": f"{shims}:{os.environ['PATH']}"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines()


def test_the_postgres_exporter_logs_in_with_each_password_it_is_given_and_monitors_only(postgres: Postgres) -> None:
    command, sql = monitoring_render.postgres_exporter_account(synapse_render.DATABASE_USER, synapse_render.DATABASE_NAME)
    assert command[0] == "psql"
    for password in PASSWORDS:
        assert not any(password in argument for argument in command)
        result = subprocess.run(
            [str(postgres.bindir / "psql"), "-h", str(postgres.socket_dir), "-p", str(postgres.port), *command[1:]],
            input=sql, env={**os.environ, "EXPORTER_PASSWORD": password}, capture_output=True, text=True,
        )
        assert result.returncode == 0, result.stderr
        assert _psql_as(postgres, "exporter", password, "SELECT pg_has_role('pg_monitor', 'member')").stdout.strip() == "t"
    assert _psql_as(postgres, "exporter", PASSWORDS[0], "SELECT 1").returncode != 0
    refused = _psql_as(postgres, "exporter", PASSWORDS[1], "CREATE TABLE taken (id int)")
    assert refused.returncode != 0 and "permission denied" in refused.stderr


def test_the_mysql_exporter_logs_in_with_each_password_it_is_given_and_reads_statistics_only(mariadb: Mariadb, tmp_path: Path) -> None:
    for password in PASSWORDS:
        calls = _run_in_mysql_container(mariadb, monitoring_render.mysql_exporter_account(), {"EXPORTER_PASSWORD": password}, tmp_path)
        assert calls and not any(password in call for call in calls)
        assert not any(password in argument for argument in monitoring_render.mysql_exporter_account())
        assert _mariadb_as(mariadb, "exporter", password, "SELECT 1").stdout.strip() == "1"
    assert "PROCESS" in _mariadb_as(mariadb, "exporter", PASSWORDS[1], "SHOW GRANTS").stdout
    assert _mariadb_as(mariadb, "exporter", PASSWORDS[1], "CREATE TABLE voicegrow.taken (id INT)").returncode != 0


def test_the_backup_account_holds_voicegrows_database_and_reads_its_routines_but_nothing_else(mariadb: Mariadb, tmp_path: Path) -> None:
    source = backup_render.MysqlSource("mysql", 3306, DATABASE)
    command = mysql_as_root(backup_render.mysql_backup_account_statements(source), "BACKUP_PASSWORD")
    for password in PASSWORDS:
        calls = _run_in_mysql_container(mariadb, command, {"BACKUP_PASSWORD": password}, tmp_path)
        assert calls and not any(password in call for call in calls)
        assert _mariadb_as(mariadb, "backup", password, "SELECT 1").stdout.strip() == "1"
    backup = PASSWORDS[1]
    assert _mariadb_as(mariadb, "backup", backup, f"SHOW CREATE FUNCTION {DATABASE}.greeting").stdout.count("ni hao") == 1
    assert _mariadb_as(mariadb, "backup", backup, f"DROP DATABASE {DATABASE}; CREATE DATABASE {DATABASE}").returncode == 0
    # MariaDB shows the database of mysql.proc, of which the account reads that one table only.
    assert _mariadb_as(mariadb, "backup", backup, "SHOW DATABASES").stdout.split() == ["information_schema", "mysql", DATABASE]
    assert _mariadb_as(mariadb, "backup", backup, "SELECT * FROM mysql.user").returncode != 0
    assert _mariadb_as(mariadb, "backup", backup, "SELECT * FROM other.private").returncode != 0
    assert _mariadb_as(mariadb, "backup", backup, "CREATE USER intruder IDENTIFIED BY 'x'").returncode != 0

