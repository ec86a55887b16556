"""The role registry: every container role the program runs, and its facts, declared once.

A role's image setting, security policy, CPU weight, stop grace and the component that runs it are
here; its memory and CPU caps per profile are in config/profiles.yaml (one table per profile), and
`StackSettings.role` (config/models.py) resolves all of it, with the stack's overrides, into the
`RoleSettings` a component reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.hardening import DATABASE_ULIMITS, NGINX, SecurityPolicy


@dataclass(frozen=True)
class Role:
    """What the program knows of one container role, whatever the stack."""

    name: str
    """The role's key in the settings (`resources.<name>`, `security.<name>`)."""
    component: str
    """The component that runs it, as its containers' labels say."""
    image: str | None
    """The `images.*` setting it runs from; None: an image the program builds or the operator gives."""
    security: SecurityPolicy
    cpu_weight: int
    """Docker CPU shares, the same in every profile: who wins under contention."""
    stop_grace_seconds: int = 10
    """Seconds between the stop signal and SIGKILL: data services flush and checkpoint."""
    label: str = ""
    """The role as its containers' labels name it; empty: `name`."""

    @property
    def role_label(self) -> str:
        return self.label or self.name


# Monitoring's images' own unprivileged users (the node and cAdvisor readers run as the image
# says); their configuration is uploaded into the root filesystem, which therefore stays
# writable. Nothing is given back.
_MONITORING = SecurityPolicy(user=None, read_only=False, tmpfs=(), pids_limit=128)


def _monitoring(name: str, image: str, label: str = "") -> Role:
    # Background work yields to every request.
    return Role(name, "monitoring", image, _MONITORING, cpu_weight=256, label=label or name.replace("_", "-"))


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        # The image's postgres user; the socket directory is written at every start. It flushes
        # and checkpoints before it stops.
        Role(
            "postgres", "synapse", "postgres",
            SecurityPolicy(user="999:999", tmpfs=("/tmp", "/var/run/postgresql"), pids_limit=256, ulimits=DATABASE_ULIMITS),
            cpu_weight=1024, stop_grace_seconds=60,
        ),
        # The image's synapse user (991); it writes only its data volume. Synapse (every process
        # of it) wins against its database two to one: its event loop is the bottleneck, and
        # PostgreSQL waits on it rather than the reverse. It answers the requests in progress.
        Role("synapse", "synapse", "synapse", SecurityPolicy(user="991:991", pids_limit=256), cpu_weight=2048, stop_grace_seconds=30),
        Role("synapse_worker", "synapse", "synapse", SecurityPolicy(user="991:991", pids_limit=256), cpu_weight=2048, stop_grace_seconds=30),
        # Synapse's replication bus: Redis without persistence.
        Role(
            "synapse_redis", "synapse", "redis", SecurityPolicy(user="999:999", pids_limit=64, ulimits=DATABASE_ULIMITS),
            cpu_weight=512,
        ),
        Role("wellknown", "synapse", "nginx", NGINX, cpu_weight=256),
        # The image's mysql user; the socket and pid file are written at every start.
        Role(
            "mysql", "voicegrow", "mysql",
            SecurityPolicy(user="999:999", tmpfs=("/tmp", "/var/run/mysqld"), pids_limit=256, ulimits=DATABASE_ULIMITS),
            cpu_weight=1024, stop_grace_seconds=120,
        ),
        # It saves its snapshot before it stops.
        Role(
            "redis", "voicegrow", "redis", SecurityPolicy(user="999:999", pids_limit=64, ulimits=DATABASE_ULIMITS),
            cpu_weight=512, stop_grace_seconds=60,
        ),
        # The image has no user of its own and runs as any; its data volume is handed to this one.
        Role("minio", "voicegrow", "minio", SecurityPolicy(user="1000:1000", pids_limit=256), cpu_weight=512, stop_grace_seconds=30),
        # The operator's image: its own user; `security.voicegrow_server` relaxes the rest for it.
        # It closes its WebSockets before it stops.
        Role(
            "voicegrow_server", "voicegrow", None, SecurityPolicy(user=None, pids_limit=512),
            cpu_weight=1024, stop_grace_seconds=30, label="server",
        ),
        # nginx's stop signal (SIGQUIT) lets workers finish their requests; WebSockets would hold
        # it for a day, so they are cut after this.
        Role("proxy", "proxy", "nginx", NGINX, cpu_weight=1024, stop_grace_seconds=15),
        # certbot runs as the proxy's user: the private key it writes (0600) is then nginx's to read.
        Role(
            "acme", "proxy", "acme",
            SecurityPolicy(user="101:101", tmpfs=("/tmp", "/var/lib/letsencrypt", "/var/log/letsencrypt"), pids_limit=64),
            cpu_weight=128,
        ),
        # The restore writes Synapse's files with their numeric owners and modes, and reads the
        # databases' 0700 directories: it keeps the file capabilities. Its job and credentials are
        # uploaded files, so its root filesystem stays writable.
        Role(
            "backup", "backup", None,
            SecurityPolicy(user=None, capabilities=("CHOWN", "DAC_OVERRIDE", "FOWNER"), read_only=False, pids_limit=128),
            cpu_weight=256,
        ),
        # The healer opens the engine's socket, which is root's (mode 0660): it runs as root, with
        # no capability (an owner needs none to open its own file), no network and a read-only root.
        Role("healer", "healer", None, SecurityPolicy(user="0:0", pids_limit=32), cpu_weight=128),
        # The engine API filter opens the engine's socket too, as root without any capability; it is
        # the only networked container that does, on a network of its own with Alloy and cAdvisor.
        Role("engine_api", "monitoring", "engine_api", SecurityPolicy(user="0:0", pids_limit=32), cpu_weight=256, label="engine-api"),
        _monitoring("prometheus", "prometheus"),
        _monitoring("alertmanager", "alertmanager"),
        _monitoring("node_exporter", "node_exporter"),
        _monitoring("blackbox_exporter", "blackbox_exporter"),
        _monitoring("dingtalk", "dingtalk"),
        _monitoring("grafana", "grafana"),
        _monitoring("loki", "loki"),
        _monitoring("alloy", "alloy"),
        _monitoring("cadvisor", "cadvisor"),
        _monitoring("postgres_exporter", "postgres_exporter"),
        _monitoring("mysql_exporter", "mysql_exporter"),
        _monitoring("redis_exporter", "redis_exporter"),
    )
}
