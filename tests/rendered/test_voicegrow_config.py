"""VoiceGrow's rendered redis.conf and my.cnf, loaded by a real redis-server and a real MariaDB server.

MariaDB stands in for MySQL 8.4 here (Debian ships no MySQL), so what is checked is that every
rendered option exists and takes the rendered value; how MySQL reads them is not run here.
Two notes on MySQL 8.4: the guide's `--default-authentication-plugin` is not rendered (removed in
8.4; clients speak caching_sha2_password), and the redo log is sized with the MySQL-only
`innodb_redo_log_capacity` (which replaced the deprecated `innodb_log_file_size` in 8.0.30),
prefixed `loose-` so that a server without it, MariaDB here, ignores it instead of refusing the file.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.program import run_program
from tests.rendered.processes import free_port, wait_for
from tests.unit.mocks import RecordingMocks

pytestmark = pytest.mark.rendered

GENERATED_REDIS_PASSWORD = "generated-redis-password"
# An operator's password with every character redis.conf treats specially, and some that are not ASCII.
OPERATOR_REDIS_PASSWORD = "quote\" back\\slash 'single' #hash $dollar 密码"


def _uploads(stack: str, container: str, secrets: dict[str, str] | None = None) -> dict[str, str]:
    mocks = RecordingMocks()
    run_program(mocks, stack, preview=False, secrets=secrets)
    return mocks.files(container)




@pytest.fixture(params=[None, OPERATOR_REDIS_PASSWORD], ids=["generated-password", "operator-password"])
def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A redis-server on loopback with the rendered config; yields its port and password."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the test script installs it)")
    port = free_port()
    secrets = {"redis_password": request.param} if request.param else None
    password = request.param or GENERATED_REDIS_PASSWORD
    conf = _uploads("prod", "voicegrow-redis", secrets)["/usr/local/etc/redis/redis.conf"]
    conf = conf.replace("bind 0.0.0.0", "bind 127.0.0.1").replace("port 6379", f"port {port}").replace("dir /data", f"dir {tmp_path}")
    (tmp_path / "redis.conf").write_text(conf)
    process = subprocess.Popen(["redis-server", str(tmp_path / "redis.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _redis_cli(port, "ping", password=password) == "PONG" or process.poll() is not None, 10, "redis start")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        yield port, password
    finally:
        process.terminate()
        process.wait(10)


def _redis_cli(port: int, *command: str, password: str | None = None) -> str:
    env = {"REDISCLI_AUTH": password} if password else {}
    result = subprocess.run(["redis-cli", "-p", str(port), *command], capture_output=True, text=True, env=env)
    return (result.stdout + result.stderr).strip()


def test_redis_accepts_the_rendered_config_and_requires_the_password(redis_server: tuple[int, str]) -> None:
    port, password = redis_server
    assert _redis_cli(port, "ping", password=password) == "PONG"
    assert "NOAUTH" in _redis_cli(port, "ping")
    assert "WRONGPASS" in _redis_cli(port, "ping", password=password[:-1])


def test_redis_runs_with_the_rendered_memory_and_persistence(redis_server: tuple[int, str]) -> None:
    port, password = redis_server
    assert _redis_cli(port, "config", "get", "maxmemory", password=password).split() == ["maxmemory", str(384 * 1024 * 1024)]
    assert _redis_cli(port, "config", "get", "maxmemory-policy", password=password).split()[1] == "allkeys-lru"
    assert _redis_cli(port, "config", "get", "appendonly", password=password).split()[1] == "yes"
    assert _redis_cli(port, "config", "get", "save", password=password).splitlines()[1] == "900 1 300 10 60 10000"


def test_redis_rejects_a_broken_config(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (the test script installs it)")
    (tmp_path / "redis.conf").write_text("maxmemory-policy everything-lru\n")
    result = subprocess.run(["redis-server", str(tmp_path / "redis.conf")], capture_output=True, text=True, timeout=10)
    assert result.returncode != 0


def _start_mariadb(tmp_path: Path, rendered: str) -> subprocess.Popen[str]:
    data, sock = tmp_path / "data", tmp_path / "mysqld.sock"
    # The rendered file is a conf.d include; the wrapper only moves data and socket into tmp_path.
    (tmp_path / "my.cnf").write_text(
        f"[mysqld]\ndatadir = {data}\nsocket = {sock}\nskip-networking\nuser = root\n!include {tmp_path / 'voicegrow.cnf'}\n"
    )
    (tmp_path / "voicegrow.cnf").write_text("")
    subprocess.run(["mariadb-install-db", f"--defaults-file={tmp_path / 'my.cnf'}", "--auth-root-authentication-method=socket"], check=True, capture_output=True)
    (tmp_path / "voicegrow.cnf").write_text(rendered)
    return subprocess.Popen(["mariadbd", f"--defaults-file={tmp_path / 'my.cnf'}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def mariadb_variables(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("mariadbd") is None:
        pytest.skip("mariadb-server is not installed (the test script installs it)")
    process = _start_mariadb(tmp_path, _uploads("prod", "voicegrow-mysql")["/etc/mysql/conf.d/voicegrow.cnf"])
    sock = tmp_path / "mysqld.sock"
    try:
        wait_for(lambda: sock.exists() or process.poll() is not None, 60, "mariadb start")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        query = subprocess.run(["mariadb", "-S", str(sock), "-N", "-B", "-e", "SHOW GLOBAL VARIABLES"], capture_output=True, text=True, check=True)
        yield dict(line.split("\t", 1) for line in query.stdout.splitlines())
    finally:
        process.terminate()
        process.wait(30)


def test_mariadb_runs_with_the_rendered_character_set_and_limits(mariadb_variables: dict[str, str]) -> None:
    assert mariadb_variables["character_set_server"] == "utf8mb4"
    assert mariadb_variables["collation_server"] == "utf8mb4_unicode_ci"
    assert mariadb_variables["innodb_buffer_pool_size"] == str(1024**3)
    assert mariadb_variables["max_connections"] == "200"
    assert mariadb_variables["wait_timeout"] == "600"
    assert mariadb_variables["skip_name_resolve"] == "ON"
    assert mariadb_variables["slow_query_log"] == "ON"
    assert mariadb_variables["sql_mode"] == "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION"
    assert mariadb_variables["time_zone"] == "+08:00"


def test_mariadb_refuses_an_unknown_option(tmp_path: Path) -> None:
    if shutil.which("mariadbd") is None:
        pytest.skip("mariadb-server is not installed (the test script installs it)")
    process = _start_mariadb(tmp_path, "[mysqld]\ninnodb_buffer_pool_sise = 1G\n")
    assert process.wait(60) != 0
