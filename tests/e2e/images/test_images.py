"""The stand-in images honour the contracts of the official images they replace.

Each test runs an image built by build.sh (beside this file; it is run for the images a test
needs and returns at once when they are cached) on a real Docker engine, and checks one part of
the official image's contract that the program relies on. See README.md for the contracts.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

docker = pytest.importorskip("docker", reason="the docker Python package is not installed")
import docker.errors  # noqa: E402
from tests.e2e.container_exec import run_in

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build.sh"
TAGS = {
    "postgres": "e2e.local/postgres:16",
    "synapse": "e2e.local/synapse:v1.163.2",
    "nginx": "e2e.local/nginx:1.27",
    "mysql": "e2e.local/mysql:8.0",
    "redis": "e2e.local/redis:7",
}
SYNAPSE_UID = 991


# ----------------------------------------------------------------------------------------------
# Engine, images, and throwaway containers


_built: set[str] = set()


def built(name: str) -> str:
    """The tag of the stand-in image NAME, built (or found cached) by build.sh."""
    if name not in _built:
        result = subprocess.run(["bash", str(BUILD), name], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"build.sh {name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        _built.add(name)
    return TAGS[name]


class Lab:
    """Creates containers and volumes with unique names and removes them afterwards."""

    def __init__(self, engine: docker.DockerClient) -> None:
        self.engine = engine
        self.prefix = f"e2e-images-{uuid.uuid4().hex[:8]}"
        self.containers: list = []
        self.volumes: list = []

    def volume(self) -> str:
        volume = self.engine.volumes.create(name=f"{self.prefix}-v{len(self.volumes)}")
        self.volumes.append(volume)
        return volume.name

    def create(self, image: str, files: dict[str, tuple[str, int, int]] | None = None, **options):
        """A created (not started) container, with FILES ({path: (content, mode, uid)}) put in it."""
        container = self.engine.containers.create(
            image, name=f"{self.prefix}-c{len(self.containers)}", detach=True, **options
        )
        self.containers.append(container)
        if files:
            container.put_archive("/", tar_of(files))
        return container

    def start(self, image: str, files: dict[str, tuple[str, int, int]] | None = None, **options):
        container = self.create(image, files, **options)
        container.start()
        return container

    def run_once(self, image: str, **options) -> tuple[int, str]:
        """Run a container to its end: its exit code and output."""
        container = self.start(image, **options)
        status = container.wait(timeout=120)
        return status["StatusCode"], container.logs().decode(errors="replace")

    def close(self) -> None:
        for container in self.containers:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for volume in self.volumes:
            try:
                volume.remove(force=True)
            except docker.errors.NotFound:
                pass


@pytest.fixture(scope="module")
def lab(engine) -> Iterator[Lab]:
    laboratory = Lab(engine)
    yield laboratory
    laboratory.close()


def tar_of(files: dict[str, tuple[str, int, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path, (content, mode, uid) in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, uid, time.time()
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sh(container, script: str, user: str = "", env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a shell script in a running container: exit code and output (stdout and stderr)."""
    result = run_in(container, ["sh", "-c", script], user=user, environment=env)
    return result.exit_code, result.output.strip()


def wait_until(check: Callable[[], bool], container, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except docker.errors.APIError:  # exec in a container that stopped
            pass
        container.reload()
        if container.status in ("exited", "dead"):
            pytest.fail(f"{what}: the container stopped:\n{container.logs().decode(errors='replace')[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout:.0f} s:\n{container.logs().decode(errors='replace')[-4000:]}")


def process_uids(container) -> dict[str, set[int]]:
    """Real uids of the container's processes, by process name."""
    code, output = sh(
        container,
        "for f in /proc/[0-9]*/status; do awk '/^Name:/{n=$2} /^Uid:/{print n, $2}' $f 2>/dev/null; done",
    )
    assert code == 0, output
    uids: dict[str, set[int]] = {}
    for line in output.splitlines():
        name, uid = line.split()
        uids.setdefault(name, set()).add(int(uid))
    return uids


def ip_address(container) -> str:
    container.reload()
    return next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]


# ----------------------------------------------------------------------------------------------
# PostgreSQL (postgres:16-bookworm)

PG_PASSWORD = "pg-secret-'quoted'"


@pytest.fixture(scope="module")
def postgres(lab) -> dict:
    volume = lab.volume()
    container = lab.start(
        built("postgres"),
        environment={
            "POSTGRES_USER": "synapse",
            "POSTGRES_PASSWORD": PG_PASSWORD,
            "POSTGRES_INITDB_ARGS": "--encoding=UTF-8 --lc-collate=C --lc-ctype=C",
        },
        command=["postgres", "-c", "shared_buffers=96MB", "-c", "max_connections=40"],
        volumes={volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
    )
    wait_until(lambda: sh(container, "pg_isready -U synapse -h 127.0.0.1")[0] == 0, container, "postgres ready")
    # pg_isready answers during the init's socket-only server too: wait for the real one.
    wait_until(lambda: "init process complete" in container.logs().decode(), container, "postgres init done")
    wait_until(lambda: sh(container, "pg_isready -U synapse -h 127.0.0.1")[0] == 0, container, "postgres up")
    return {"container": container, "volume": volume}


def psql(container, sql: str, database: str = "synapse") -> str:
    code, output = sh(container, f'psql -U synapse -d {database} -tAc "{sql}"')
    assert code == 0, output
    return output


def test_postgres_creates_postgres_db_named_after_the_user_with_initdb_args_collation(postgres):
    row = psql(
        postgres["container"],
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = 'synapse'",
    )
    assert row == "UTF8|C|C"


def test_postgres_takes_server_options_from_the_command(postgres):
    assert psql(postgres["container"], "SHOW shared_buffers") == "96MB"
    assert psql(postgres["container"], "SHOW max_connections") == "40"


def test_postgres_listens_on_all_addresses_and_checks_passwords_over_the_network(postgres):
    container = postgres["container"]
    address = ip_address(container)
    assert psql(container, "SHOW listen_addresses") == "*"
    query = f"psql -h {address} -U synapse -d synapse -tAc 'SELECT 1'"
    assert sh(container, query, env={"PGPASSWORD": PG_PASSWORD}) == (0, "1")
    code, output = sh(container, query, env={"PGPASSWORD": "wrong"})
    assert code != 0 and "password authentication failed" in output


def test_postgres_server_runs_as_user_postgres(postgres):
    assert process_uids(postgres["container"])["postgres"] == {999}
    assert sh(postgres["container"], "id -un 999")[1] == "postgres"


def test_postgres_client_tools_are_on_path(postgres):
    for tool in ("pg_isready", "psql", "pg_dump", "pg_restore"):
        code, output = sh(postgres["container"], f"{tool} --version")
        assert code == 0 and "PostgreSQL" in output, (tool, output)


def test_postgres_dump_restores_with_pg_restore(postgres):
    container = postgres["container"]
    psql(container, "CREATE TABLE IF NOT EXISTS kept (word text); INSERT INTO kept VALUES ('hello')")
    script = (
        "pg_dump -U synapse -Fc synapse > /tmp/dump"
        " && psql -U synapse -d postgres -qc 'CREATE DATABASE restored'"
        " && pg_restore -U synapse -d restored /tmp/dump"
    )
    assert sh(container, script, user="postgres")[0] == 0
    assert psql(container, "SELECT word FROM kept", database="restored") == "hello"


def test_postgres_initialises_only_an_empty_data_directory(postgres, lab):
    """A second server on the same volume keeps the data and ignores the init settings."""
    postgres["container"].stop(timeout=30)
    container = lab.start(
        built("postgres"),
        environment={"POSTGRES_USER": "other", "POSTGRES_PASSWORD": "x", "POSTGRES_DB": "otherdb"},
        volumes={postgres["volume"]: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
    )
    wait_until(lambda: sh(container, "pg_isready -h 127.0.0.1")[0] == 0, container, "postgres restarted")
    assert "Skipping initialization" in container.logs().decode()
    assert psql(container, "SELECT datname FROM pg_database WHERE datname = 'otherdb'") == ""
    container.stop(timeout=30)
    postgres["container"].start()  # one server at a time on the volume; back for later tests


def test_postgres_options_alone_run_the_server_and_db_postgres_is_not_created_again(lab):
    container = lab.start(built("postgres"), environment={"POSTGRES_PASSWORD": "x"}, command=["-c", "shared_buffers=64MB"])
    wait_until(lambda: "init process complete" in container.logs().decode(), container, "postgres init done")
    wait_until(lambda: sh(container, "pg_isready -h 127.0.0.1")[0] == 0, container, "postgres up")
    assert sh(container, "psql -U postgres -tAc 'SHOW shared_buffers'") == (0, "64MB")
    databases = sh(container, "psql -U postgres -tAc 'SELECT datname FROM pg_database ORDER BY 1'")[1]
    assert databases.split() == ["postgres", "template0", "template1"]


def test_postgres_refuses_to_initialise_without_a_password(lab):
    code, logs = lab.run_once(built("postgres"))
    assert code != 0 and "POSTGRES_PASSWORD" in logs


# ----------------------------------------------------------------------------------------------
# Synapse (matrixdotorg/synapse:v1.163.2)

SERVER_NAME = "matrix.test"
REGISTRATION_SECRET = "registration-secret-for-tests"
HOMESERVER_YAML = textwrap.dedent(
    f"""\
    server_name: "{SERVER_NAME}"
    pid_file: /data/homeserver.pid
    listeners:
      - port: 8008
        type: http
        tls: false
        x_forwarded: true
        bind_addresses: ["0.0.0.0"]
        resources:
          - names: [client, federation]
            compress: false
    database:
      name: sqlite3
      args:
        database: /data/homeserver.db
    media_store_path: /data/media_store
    signing_key_path: /data/{SERVER_NAME}.signing.key
    report_stats: false
    macaroon_secret_key: "macaroon-secret-for-tests"
    registration_shared_secret: "{REGISTRATION_SECRET}"
    trusted_key_servers: []
    """
)


def synapse_data_volume(lab, owner: int | None) -> str:
    """A volume for /data holding homeserver.yaml; with OWNER, chowned to it as the program must."""
    volume = lab.volume()
    image = built("synapse")
    if owner is not None:
        code, logs = lab.run_once(
            image, entrypoint=["chown", f"{owner}:{owner}", "/data"], volumes={volume: {"bind": "/data", "mode": "rw"}}
        )
        assert code == 0, logs
    owner_of_config = owner if owner is not None else 0
    carrier = lab.create(image, volumes={volume: {"bind": "/data", "mode": "rw"}})
    carrier.put_archive("/", tar_of({"/data/homeserver.yaml": (HOMESERVER_YAML, 0o644, owner_of_config)}))
    return volume


def synapse_healthy(container) -> bool:
    return sh(container, "curl -fSs http://localhost:8008/health") == (0, "OK")


@pytest.fixture(scope="module")
def synapse(lab) -> dict:
    volume = synapse_data_volume(lab, owner=SYNAPSE_UID)
    container = lab.start(built("synapse"), volumes={volume: {"bind": "/data", "mode": "rw"}})
    wait_until(lambda: synapse_healthy(container), container, "synapse /health")
    return {"container": container, "volume": volume}


def test_synapse_answers_health_with_curl_from_inside(synapse):
    assert synapse_healthy(synapse["container"])


def test_synapse_runs_as_uid_991_by_default(synapse):
    assert process_uids(synapse["container"])["python"] == {SYNAPSE_UID}


def test_synapse_writes_its_signing_key_in_data(synapse):
    code, output = sh(synapse["container"], f"stat -c '%u %a' /data/{SERVER_NAME}.signing.key")
    assert (code, output) == (0, f"{SYNAPSE_UID} 640")


def test_synapse_register_new_matrix_user_is_on_path_and_registers(synapse):
    container = synapse["container"]
    code, output = sh(
        container,
        "register_new_matrix_user -c /data/homeserver.yaml -u alice -p alice-password --no-admin http://localhost:8008",
    )
    assert code == 0, output
    login = json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "alice-password"})
    code, output = sh(container, f"curl -fsS -X POST -d '{login}' http://localhost:8008/_matrix/client/v3/login")
    assert code == 0, output
    assert json.loads(output)["user_id"] == f"@alice:{SERVER_NAME}"


def test_synapse_image_declares_the_official_entrypoint_ports_and_healthcheck(engine):
    config = engine.images.get(built("synapse")).attrs["Config"]
    assert config["Entrypoint"] == ["/start.py"]
    assert {"8008/tcp", "8448/tcp"} <= set(config["ExposedPorts"])
    assert config["Healthcheck"]["Test"][-1].startswith("curl -fSs http://localhost:8008/health")


def test_synapse_does_not_chown_a_root_owned_data_volume_in_run_mode(lab):
    """As in the official image: /data must already be writable by uid 991, or start fails."""
    volume = synapse_data_volume(lab, owner=None)
    code, logs = lab.run_once(built("synapse"), volumes={volume: {"bind": "/data", "mode": "rw"}})
    assert code != 0
    assert "PermissionError" in logs and "signing.key" in logs


def test_synapse_runs_as_uid_and_gid_from_the_environment(lab):
    volume = synapse_data_volume(lab, owner=1234)
    container = lab.start(
        built("synapse"), environment={"UID": "1234", "GID": "1234"}, volumes={volume: {"bind": "/data", "mode": "rw"}}
    )
    wait_until(lambda: synapse_healthy(container), container, "synapse /health as 1234")
    assert process_uids(container)["python"] == {1234}


def test_synapse_fails_clearly_without_a_config(lab):
    code, logs = lab.run_once(built("synapse"))
    assert code != 0 and "/data/homeserver.yaml" in logs and "does not exist" in logs


def test_synapse_generate_writes_a_config_owned_by_991(lab):
    volume = lab.volume()
    code, logs = lab.run_once(
        built("synapse"),
        command=["generate"],
        environment={"SYNAPSE_SERVER_NAME": SERVER_NAME, "SYNAPSE_REPORT_STATS": "no"},
        volumes={volume: {"bind": "/data", "mode": "rw"}},
    )
    assert code == 0, logs
    code, listing = lab.run_once(
        built("synapse"),
        entrypoint=["stat", "-c", "%n %u", "/data", "/data/homeserver.yaml", f"/data/{SERVER_NAME}.signing.key"],
        volumes={volume: {"bind": "/data", "mode": "rw"}},
    )
    assert code == 0, listing
    assert listing.split() == ["/data", "991", "/data/homeserver.yaml", "991", f"/data/{SERVER_NAME}.signing.key", "991"]


# ----------------------------------------------------------------------------------------------
# nginx (nginx:1.27-alpine)

SITE_CONF = textwrap.dedent(
    """\
    server {
        listen 8080;
        root /srv/site;
        location /.well-known/matrix/ { default_type application/json; }
    }
    """
)


@pytest.fixture(scope="module")
def nginx(lab):
    container = lab.start(
        built("nginx"),
        files={
            "/etc/nginx/conf.d/site.conf": (SITE_CONF, 0o644, 0),
            "/srv/site/.well-known/matrix/server": ('{"m.server": "matrix.test:443"}', 0o644, 0),
        },
    )
    wait_until(lambda: sh(container, "wget -q --spider http://localhost:8080/.well-known/matrix/server")[0] == 0, container, "nginx up")
    return container


def test_nginx_serves_a_file_from_a_conf_d_site(nginx):
    assert sh(nginx, "wget -qO- http://localhost:8080/.well-known/matrix/server") == (0, '{"m.server": "matrix.test:443"}')


def test_nginx_serves_the_default_html_root_on_port_80(nginx):
    code, output = sh(nginx, "wget -qO- http://localhost/")
    assert code == 0 and "Welcome to nginx" in output
    assert sh(nginx, "test -f /usr/share/nginx/html/index.html")[0] == 0


def test_nginx_checks_its_configuration(nginx):
    code, output = sh(nginx, "nginx -t")
    assert code == 0 and "test is successful" in output


def test_nginx_master_runs_as_root_and_workers_unprivileged(nginx):
    assert process_uids(nginx)["nginx"] == {0, 101}
    assert sh(nginx, "id -un 101")[1] == "nginx"


def test_nginx_logs_requests_to_the_container_output(nginx):
    sh(nginx, "wget -q --spider http://localhost:8080/.well-known/matrix/server?logged")
    wait_until(lambda: b"GET /.well-known/matrix/server?logged" in nginx.logs() or b"HEAD /.well-known/matrix/server?logged" in nginx.logs(), nginx, "access log")


def test_nginx_image_runs_nginx_in_the_foreground_by_default(engine):
    config = engine.images.get(built("nginx")).attrs["Config"]
    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert config["StopSignal"] == "SIGQUIT"


def test_nginx_renders_templates_with_defined_environment_variables(lab):
    template = "# kept: ${UNDEFINED_THING}\nserver { listen 8081; location / { return 200 '${GREETING}'; } }\n"
    container = lab.start(
        built("nginx"),
        environment={"GREETING": "hello"},
        files={"/etc/nginx/templates/greeting.conf.template": (template, 0o644, 0)},
    )
    wait_until(lambda: sh(container, "wget -q --spider http://localhost:8081/")[0] == 0, container, "nginx template site")
    assert sh(container, "wget -qO- http://localhost:8081/") == (0, "hello")
    assert sh(container, "head -1 /etc/nginx/conf.d/greeting.conf") == (0, "# kept: ${UNDEFINED_THING}")


# ----------------------------------------------------------------------------------------------
# MySQL (mysql:8.0), played by MariaDB

MYSQL_ENV = {
    "MYSQL_ROOT_PASSWORD": "root-secret",
    "MYSQL_DATABASE": "voicegrow",
    "MYSQL_USER": "voicegrow",
    "MYSQL_PASSWORD": "user-secret",
}


@pytest.fixture(scope="module")
def mysql(lab) -> dict:
    volume = lab.volume()
    files = {
        "/docker-entrypoint-initdb.d/01-schema.sql": ("CREATE TABLE devices (id INT PRIMARY KEY, name TEXT);\n", 0o644, 0),
        "/docker-entrypoint-initdb.d/02-data.sql": ("INSERT INTO devices VALUES (1, 'kitchen');\n", 0o644, 0),
        "/etc/mysql/conf.d/voicegrow.cnf": ("[mysqld]\nmax_connections = 77\ncollation-server = utf8mb4_unicode_ci\n", 0o644, 0),
    }
    container = lab.start(
        built("mysql"), environment=MYSQL_ENV, files=files, volumes={volume: {"bind": "/var/lib/mysql", "mode": "rw"}}
    )
    wait_until(lambda: b"init process done" in container.logs(), container, "mysql init")
    wait_until(lambda: user_sql(container, "SELECT 1")[0] == 0, container, "mysql up")
    return {"container": container, "volume": volume}


def user_sql(container, sql: str) -> tuple[int, str]:
    return sh(container, f'mysql -h 127.0.0.1 -u voicegrow -puser-secret voicegrow -N -B -e "{sql}"')


def test_mysql_creates_the_database_and_user_and_runs_init_sql(mysql):
    assert user_sql(mysql["container"], "SELECT name FROM devices WHERE id = 1") == (0, "kitchen")


def test_mysql_user_gets_all_privileges_on_its_database_only(mysql):
    code, output = user_sql(mysql["container"], "CREATE DATABASE other")
    assert code != 0 and "denied" in output.lower()
    assert user_sql(mysql["container"], "CREATE TABLE scratch (id INT)")[0] == 0


def test_mysql_reads_extra_configuration_from_conf_d(mysql):
    assert user_sql(mysql["container"], "SELECT @@max_connections, @@collation_server") == (0, "77\tutf8mb4_unicode_ci")


def test_mysql_root_password_works_over_the_network_and_ping_answers(mysql):
    container = mysql["container"]
    address = ip_address(container)
    assert sh(container, f"mysql -h {address} -uroot -proot-secret -N -B -e 'SELECT CURRENT_USER()'") == (0, "root@%")
    code, output = sh(container, "mysqladmin ping -h localhost -uroot -proot-secret")
    assert code == 0 and "alive" in output


def test_mysql_dump_tool_is_on_path(mysql):
    code, output = sh(mysql["container"], "mysqldump -uroot -proot-secret voicegrow devices")
    assert code == 0 and "INSERT INTO `devices`" in output


def test_mysql_server_runs_as_user_mysql(mysql):
    uids = process_uids(mysql["container"])
    assert uids.get("mysqld", uids.get("mariadbd")) == {999}
    assert sh(mysql["container"], "id -un 999")[1] == "mysql"


def test_mysql_initialises_only_once(mysql, lab):
    mysql["container"].stop(timeout=30)
    container = lab.start(
        built("mysql"),
        environment={"MYSQL_ROOT_PASSWORD": "ignored", "MYSQL_DATABASE": "second"},
        volumes={mysql["volume"]: {"bind": "/var/lib/mysql", "mode": "rw"}},
    )
    wait_until(lambda: sh(container, "mysqladmin ping -uroot -proot-secret --silent")[1] == "mysqld is alive", container, "mysql restarted")
    assert b"skipping initialization" in container.logs()
    code, output = sh(container, "mysql -uroot -proot-secret -N -B -e 'SHOW DATABASES'")
    assert code == 0 and "voicegrow" in output.split() and "second" not in output.split()
    container.stop(timeout=30)


def test_mysql_rejects_server_options_it_does_not_know_before_initialising(lab):
    code, logs = lab.run_once(built("mysql"), environment=MYSQL_ENV, command=["--innodb-dedicated-server=ON"])
    assert code != 0 and "unknown variable 'innodb-dedicated-server=ON'" in logs


# ----------------------------------------------------------------------------------------------
# Redis (redis:7.4-bookworm)

REDIS_CONF = "requirepass redis-secret\nmaxmemory 32mb\nappendonly yes\n"


@pytest.fixture(scope="module")
def redis(lab):
    container = lab.start(
        built("redis"),
        command=["redis-server", "/usr/local/etc/redis/redis.conf"],
        files={"/usr/local/etc/redis/redis.conf": (REDIS_CONF, 0o644, 0)},
    )
    wait_until(lambda: sh(container, "redis-cli ping")[1].startswith("NOAUTH"), container, "redis up")
    return container


def redis_cli(container, *args: str) -> tuple[int, str]:
    return sh(container, "redis-cli -a redis-secret --no-auth-warning " + " ".join(args))


def test_redis_loads_requirepass_from_its_config_file(redis):
    assert sh(redis, "redis-cli ping")[1].startswith("NOAUTH")
    assert redis_cli(redis, "ping") == (0, "PONG")
    assert redis_cli(redis, "config get maxmemory") == (0, "maxmemory\n33554432")


def test_redis_works_in_data_as_user_redis(redis):
    assert redis_cli(redis, "config get dir") == (0, "dir\n/data")
    assert process_uids(redis)["redis-server"] == {999}
    assert sh(redis, "stat -c %U /data/appendonlydir")[1] == "redis"


def test_redis_protected_mode_is_off_unless_configured(redis):
    assert redis_cli(redis, "config get protected-mode") == (0, "protected-mode\nno")


def test_redis_config_file_alone_as_command_runs_the_server(lab):
    container = lab.start(
        built("redis"),
        command=["/usr/local/etc/redis/redis.conf"],
        files={"/usr/local/etc/redis/redis.conf": ("requirepass other-secret\n", 0o644, 0)},
    )
    wait_until(lambda: sh(container, "redis-cli -a other-secret --no-auth-warning ping")[1] == "PONG", container, "redis up")


# ----------------------------------------------------------------------------------------------
# build.sh beside the builds of the stacks under test


def test_build_script_leaves_the_untagged_images_of_other_builds(engine, lab) -> None:
    """A stack's image built from a stand-in inherits its recipe label, and the intermediate images
    of that build are untagged until it ends: build.sh, run by tests beside such builds, must not
    remove them (a build whose parent image vanished fails with "unknown parent image ID")."""
    container = lab.create(built("postgres"), command=["true"])
    intermediate = engine.api.commit(container.id)["Id"]
    try:
        assert engine.images.get(intermediate).labels.get("e2e.recipe"), "the committed image inherits the label"
        # Run again, not through built(): its cache would skip the script.
        result = subprocess.run(["bash", str(BUILD), "postgres"], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        assert engine.images.get(intermediate).id == intermediate
    finally:
        engine.api.remove_image(intermediate, force=True)
