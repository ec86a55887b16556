"""Real PostgreSQL and MariaDB servers from Debian's packages, each started in a directory of its
own on a free port, for the tests that run rendered SQL and tools against them."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.rendered.processes import free_port, wait_for


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL: its programs, the directory of its socket, its TCP port on 127.0.0.1."""

    bindir: Path
    socket_dir: Path
    port: int

    def sql(self, statement: str, database: str = "synapse") -> str:
        """What `statement` returns, run by the superuser 'postgres' over the socket."""
        result = subprocess.run(
            [str(self.bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
             "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement],
            capture_output=True, text=True, check=True,
        )
        return result.stdout.strip()


def as_postgres(argv: list[str]) -> list[str]:
    """`argv` run as the system user postgres when this runs as root (PostgreSQL refuses root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """The newest installed PostgreSQL, trusting its socket and asking passwords (SCRAM) over TCP."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parent.parent.name))
    if not versions:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package)")
    bindir = versions[-1].parent
    base = Path(tempfile.mkdtemp(prefix="rendered-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = free_port()
    data = base / "data"
    subprocess.run(
        as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                     "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"]),
        check=True, capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
    subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield Postgres(bindir, base, port)
    finally:
        subprocess.run(as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class Mariadb:
    """A running MariaDB: its socket (root logs in there by the socket's peer) and its TCP port on 127.0.0.1."""

    socket_path: Path
    port: int

    def sql(self, statement: str) -> str:
        """What `statement` returns, run by root over the socket."""
        result = subprocess.run(["mariadb", "-S", str(self.socket_path), "-N", "-B", "-e", statement],
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()


@contextmanager
def running_mariadb(base: Path) -> Iterator[Mariadb]:
    """MariaDB with its data, socket and configuration in `base`."""
    if shutil.which("mariadbd") is None:
        pytest.skip("mariadb-server is not installed (the test script installs it)")
    port, sock = free_port(), base / "mysqld.sock"
    (base / "my.cnf").write_text(
        f"[mysqld]\ndatadir = {base / 'data'}\nsocket = {sock}\nport = {port}\nbind-address = 127.0.0.1\nskip-name-resolve\nuser = root\n"
    )
    subprocess.run(["mariadb-install-db", f"--defaults-file={base / 'my.cnf'}", "--auth-root-authentication-method=socket",
                    "--skip-test-db"],
                   check=True, capture_output=True)
    process = subprocess.Popen(["mariadbd", f"--defaults-file={base / 'my.cnf'}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sock.exists() or process.poll() is not None, 60, "mariadb start")
        yield Mariadb(sock, port)
    finally:
        process.terminate()
        process.wait(30)
