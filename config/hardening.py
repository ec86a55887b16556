"""How a container role is confined: its user, the capabilities it keeps, where it writes, its process limit.

Every container drops all Linux capabilities, cannot gain privileges (`no-new-privileges`) and
runs on a read-only root filesystem; each role gets back only what its image needs, and writes
outside its volumes only to its tmpfs paths (each role's policy is in config/roles.py). Files a
service reads (configuration, passwords) reach it on a volume of their own, owned by the role's
user (see `components/runtime/files.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Capabilities a role may be given back (`security.<role>.capabilities`); Docker's names.
CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
    "SYS_NICE",
)


@dataclass(frozen=True)
class Ulimit:
    """One resource limit of the container's processes."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class SecurityPolicy:
    """How one container role is confined."""

    user: str | None
    """`uid:gid` the container runs as; None keeps the image's own user."""
    capabilities: tuple[str, ...] = ()
    """Capabilities given back after all are dropped."""
    read_only: bool = True
    """Read-only root filesystem; the service writes only to its volumes and `tmpfs`."""
    tmpfs: tuple[str, ...] = ("/tmp",)
    """Paths the service writes outside its volumes, mounted as tmpfs (emptied at each start)."""
    pids_limit: int = 128
    """Most processes (and threads) the container may run at once."""
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()


# Databases: enough descriptors for every connection and table file, and no core dumps (a dump
# would hold data and passwords from memory).
DATABASE_ULIMITS = (Ulimit("nofile", 16384, 16384), Ulimit("core", 0, 0))
# nginx runs as its worker user (the master's `user` directive is then ignored), with its pid file
# in /run and its temporary files in /tmp (set in the rendered configuration); ports below 1024
# need no capability inside the container's own network namespace once unprivileged ports
# start at 0 (Docker's default since 20.10, stated).
NGINX = SecurityPolicy(
    user="101:101",
    tmpfs=("/tmp", "/run"),
    pids_limit=64,
    sysctls=(("net.ipv4.ip_unprivileged_port_start", "0"),),
)
