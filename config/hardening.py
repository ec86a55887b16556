"""What each container role may do: its user, the capabilities it keeps, where it writes, its process limit.

Every container drops all Linux capabilities, cannot gain privileges (`no-new-privileges`) and
runs on a read-only root filesystem; each role gets back only what its image needs, and writes
outside its volumes only to the tmpfs paths named here. Files a service reads (configuration,
passwords) reach it on a volume of their own, owned by the role's user (see
`components/runtime/files.py`).
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

POLICIES: dict[str, SecurityPolicy] = {
    # The image's postgres user; the socket directory is written at every start.
    "postgres": SecurityPolicy(
        user="999:999", tmpfs=("/tmp", "/var/run/postgresql"), pids_limit=256, ulimits=DATABASE_ULIMITS
    ),
    # The image's synapse user (991); it writes only its data volume. Its workers the same.
    "synapse": SecurityPolicy(user="991:991", pids_limit=256),
    "synapse_worker": SecurityPolicy(user="991:991", pids_limit=256),
    "wellknown": NGINX,
    "proxy": NGINX,
    # The image's mysql user; the socket and pid file are written at every start.
    "mysql": SecurityPolicy(
        user="999:999", tmpfs=("/tmp", "/var/run/mysqld"), pids_limit=256, ulimits=DATABASE_ULIMITS
    ),
    "redis": SecurityPolicy(user="999:999", pids_limit=64, ulimits=DATABASE_ULIMITS),
    # Synapse's replication bus: Redis without persistence.
    "synapse_redis": SecurityPolicy(user="999:999", pids_limit=64, ulimits=DATABASE_ULIMITS),
    # The image has no user of its own and runs as any; its data volume is handed to this one.
    "minio": SecurityPolicy(user="1000:1000", pids_limit=256),
    # The operator's image: its own user; `security.voicegrow_server` relaxes the rest for it.
    "voicegrow_server": SecurityPolicy(user=None, pids_limit=512),
    # certbot runs as the proxy's user: the private key it writes (0600) is then nginx's to read.
    "acme": SecurityPolicy(user="101:101", tmpfs=("/tmp", "/var/lib/letsencrypt", "/var/log/letsencrypt"), pids_limit=64),
    # The restore writes Synapse's files with their numeric owners and modes, and reads the
    # databases' 0700 directories: it keeps the file capabilities. Its job and credentials are
    # uploaded files, so its root filesystem stays writable.
    "backup": SecurityPolicy(user=None, capabilities=("CHOWN", "DAC_OVERRIDE", "FOWNER"), read_only=False, pids_limit=128),
    # The healer opens the engine's socket, which is root's (mode 0660): it runs as root, with
    # no capability (an owner needs none to open its own file), no network and a read-only root.
    "healer": SecurityPolicy(user="0:0", pids_limit=32),
    # The engine API filter opens the engine's socket too, as root without any capability; it is the
    # only networked container that does, on a network of its own with Alloy and cAdvisor.
    "engine_api": SecurityPolicy(user="0:0", pids_limit=32),
    # Monitoring: the images' own unprivileged users (the node and cAdvisor readers run as the
    # image says); their configuration is uploaded into the root filesystem, which therefore
    # stays writable. Nothing is given back.
    **{
        role: SecurityPolicy(user=None, read_only=False, tmpfs=(), pids_limit=128)
        for role in (
            "prometheus",
            "alertmanager",
            "node_exporter",
            "blackbox_exporter",
            "dingtalk",
            "grafana",
            "loki",
            "alloy",
            "cadvisor",
            "postgres_exporter",
            "mysql_exporter",
            "redis_exporter",
        )
    },
}
