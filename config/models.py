"""Pydantic models of every stack setting, after environment and profile defaults are merged in.

Each model forbids unknown keys, so a misspelt setting fails instead of being ignored.
Field descriptions are the settings reference: config/reference.py writes them into docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from cryptography import x509
from pydantic import Field, field_validator, model_validator

from components.images.backup.archives import PartPlan, Retention
from components.images.backup.cron import CronSchedule
from config.base import Settings
from config.environments import EnvironmentName, LogLevel, RegistrationMode, TlsMode
from config.hardening import CAPABILITIES, SecurityPolicy
from config.monitoring import FULL_ROLES, MonitoringSettings
from config.roles import ROLES, Role
from config.profiles import (
    MYSQL_CONNECTION_BUFFERS_KB,
    MYSQL_SERVER_MB,
    POSTGRES_AUTOVACUUM_WORKERS,
    POSTGRES_BACKEND_MB,
    POSTGRES_OTHER_CONNECTIONS,
    POSTGRES_SERVER_MB,
    PROFILES,
    ContainerLimits,
    ProfileName,
    synapse_workers,
)
from config.types import (
    CronExpression,
    Cpus,
    DomainName,
    HttpUrl,
    ImageRef,
    IpAddress,
    Localpart,
    MemoryMB,
    Platform,
    Port,
    SynapseDuration,
    TimeZoneName,
    UploadSize,
    image_tag,
    registry_mirror_problem,
    split_reference,
)


class DockerSettings(Settings):
    """Where the containers run."""

    host: str | None = Field(
        default=None,
        description="Docker daemon address, e.g. 'ssh://deploy@vps.example.com'; empty = the local engine.",
        pattern=r"^(unix|tcp|ssh)://\S+$",
    )


class ImageSettings(Settings):
    """Every image the program runs: pinned references, registry mirrors and the host's platform."""

    renamed: ClassVar[dict[str, str]] = {
        "registry_mirror": (
            "to images.registry_mirrors, one mirror per registry host: write it as "
            "registry_mirrors: {{docker.io: {value}}} (or `pulumi config set --path "
            "'images.registry_mirrors[\"docker.io\"]' {value}`) and remove registry_mirror"
        )
    }
    NOT_IMAGES: ClassVar[frozenset[str]] = frozenset({"registry_mirrors", "platform", "prune"})

    registry_mirrors: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Mirror of each registry, by registry host: e.g. {docker.io: mirror.example.cn/dockerhub, "
            "quay.io: mirror.example.cn/quay, ghcr.io: mirror.example.cn/ghcr}. A reference is pulled "
            "through the mirror of the registry it names (none: docker.io); others are pulled as they are."
        ),
    )
    platform: Platform | None = Field(
        default=None,
        description=(
            "Platform of the Docker host, e.g. 'linux/arm64': images are pulled and built for it. "
            "Default: the engine's own for pulls, the deploying machine's for builds."
        ),
    )
    prune: bool = Field(
        default=True,
        description="After a deploy that changed an image, remove the stack's older images, keeping the previous version of each.",
    )
    postgres: ImageRef = Field(default="postgres:16.10-bookworm", description="PostgreSQL server for Synapse.")
    synapse: ImageRef = Field(default="matrixdotorg/synapse:v1.163.2", description="Matrix Synapse homeserver.")
    nginx: ImageRef = Field(default="nginx:1.27.5-alpine", description="nginx for .well-known and the proxy.")
    mysql: ImageRef = Field(default="mysql:8.4.9", description="MySQL server for VoiceGrow (8.4, the LTS line).")
    redis: ImageRef = Field(default="redis:7.4.5-bookworm", description="Redis for VoiceGrow.")
    minio: ImageRef = Field(
        default="quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
        description="MinIO object store (gone from Docker Hub; frozen: no new releases or security fixes).",
    )
    acme: ImageRef = Field(default="certbot/certbot:v3.3.0", description="ACME client that gets Let's Encrypt certificates.")
    prometheus: ImageRef = Field(default="prom/prometheus:v3.5.0", description="Prometheus (monitoring).")
    alertmanager: ImageRef = Field(default="prom/alertmanager:v0.28.1", description="Alertmanager (monitoring).")
    node_exporter: ImageRef = Field(default="prom/node-exporter:v1.9.1", description="Host metrics exporter (monitoring).")
    blackbox_exporter: ImageRef = Field(default="prom/blackbox-exporter:v0.27.0", description="HTTP/TCP/TLS prober (monitoring).")
    dingtalk: ImageRef = Field(
        default="timonwong/prometheus-webhook-dingtalk:v2.1.0", description="Alertmanager-to-DingTalk bridge (receiver 'dingtalk')."
    )
    grafana: ImageRef = Field(default="grafana/grafana:12.1.0", description="Grafana (full monitoring).")
    loki: ImageRef = Field(default="grafana/loki:3.5.0", description="Loki log store (full monitoring).")
    alloy: ImageRef = Field(default="grafana/alloy:v1.10.0", description="Grafana Alloy, the log collector (full monitoring).")
    cadvisor: ImageRef = Field(default="ghcr.io/google/cadvisor:v0.53.0", description="Per-container metrics (full monitoring).")
    engine_api: ImageRef = Field(
        default="nginx:1.27.5-alpine",
        description="nginx that passes Alloy's and cAdvisor's reads to the engine's API and refuses the rest (full monitoring).",
    )
    postgres_exporter: ImageRef = Field(
        default="quay.io/prometheuscommunity/postgres-exporter:v0.17.1", description="PostgreSQL exporter (full monitoring)."
    )
    mysql_exporter: ImageRef = Field(default="prom/mysqld-exporter:v0.17.2", description="MySQL exporter (full monitoring).")
    redis_exporter: ImageRef = Field(default="oliver006/redis_exporter:v1.74.0-alpine", description="Redis exporter (full monitoring); a variant with wget, its health check.")

    @field_validator("registry_mirrors")
    @classmethod
    def _mirrors_are_registry_hosts_and_prefixes(cls, mirrors: dict[str, str]) -> dict[str, str]:
        for registry, mirror in mirrors.items():
            problem = registry_mirror_problem(registry, mirror)
            if problem:
                raise ValueError(f"must map registry hosts to mirrors: {problem}")
        return mirrors

    def references(self) -> list[str]:
        """The reference to pull of every image setting, sorted."""
        return sorted(self.reference(name) for name in type(self).model_fields.keys() - self.NOT_IMAGES)

    def reference(self, image: str) -> str:
        """The reference to pull for one of these images, through its registry's mirror when one is set."""
        return self.mirrored(getattr(self, image))

    def mirrored(self, reference: str) -> str:
        """A reference rewritten to the mirror of the registry it names; as it is when that has none."""
        registry, repository = split_reference(reference)
        mirror = self.registry_mirrors.get(registry)
        return reference if mirror is None else f"{mirror}/{repository}"


class LogRotation(Settings):
    """json-file log rotation applied to every container."""

    max_size: str = Field(default="10m", pattern=r"^\d+[kmg]$", description="Size of one log file, e.g. '10m'.")
    max_file: int = Field(default=3, ge=1, le=100, description="How many log files to keep.")


class ResourceOverride(Settings):
    """Limits for one container role that replace the profile's."""

    memory: MemoryMB | None = Field(
        default=None,
        description=(
            "Memory limit, e.g. '512M' or '1.5G'. For postgres, mysql and redis it must hold what the "
            "database's settings let it use (the rules: docs/configuration.md, 'Memory of the databases')."
        ),
    )
    cpus: Cpus | None = Field(
        default=None, description="Hard CPU cap in cores, e.g. 0.5; the profile caps only background roles."
    )
    cpu_weight: int | None = Field(
        default=None,
        ge=2,
        le=262144,
        description="CPU weight under contention (Docker's CPU shares; 1024 is Docker's default), e.g. 2048.",
    )
    reservation: MemoryMB | None = Field(default=None, description="Memory reservation, e.g. '256M'.")

    @model_validator(mode="after")
    def _reservation_fits_limit(self) -> ResourceOverride:
        if self.memory and self.reservation and self.reservation > self.memory:
            raise ValueError("reservation must not exceed memory")
        return self


class SecurityOverride(Settings):
    """Relaxes one container role's confinement, e.g. for an operator's own server image."""

    user: str | None = Field(
        default=None, pattern=r"^\d+(:\d+)?$", description="uid[:gid] the container runs as, e.g. '1000:1000'."
    )
    capabilities: list[str] = Field(
        default_factory=list, description=f"Capabilities given back, of: {', '.join(CAPABILITIES)}."
    )
    read_only: bool | None = Field(
        default=None, description="false: a writable root filesystem, for an image that writes outside its volumes."
    )
    pids_limit: int | None = Field(default=None, ge=16, le=65536, description="Most processes the container may run.")

    @model_validator(mode="after")
    def _capabilities_are_known(self) -> SecurityOverride:
        unknown = [name for name in self.capabilities if name not in CAPABILITIES]
        if unknown:
            raise ValueError(
                f"capabilities must be of {', '.join(CAPABILITIES)} (without CAP_), got {', '.join(unknown)}"
            )
        return self


class MessageRetention(Settings):
    """Synapse's message retention policy (`retention`): events older than a room's lifetime are purged."""

    enabled: bool = Field(default=False, description="Purge old messages; off by default (history is kept).")
    max_lifetime: SynapseDuration = Field(default="365d", description="Default lifetime of a room's messages, e.g. '180d'.")
    min_lifetime: SynapseDuration | None = Field(default=None, description="Shortest lifetime a room may set; default: none.")


class MediaRetention(Settings):
    """Synapse's own media lifetimes (`media_retention`), checked by Synapse every hour; unset keeps media."""

    local_media_lifetime: SynapseDuration | None = Field(
        default=None, description="Delete media uploaded here and not seen for this long, e.g. '365d'; default: keep."
    )
    remote_media_lifetime: SynapseDuration | None = Field(
        default=None, description="Delete cached media of other servers not seen for this long, e.g. '90d'; default: keep."
    )


class RemoteMediaPurge(Settings):
    """Scheduled purge of cached remote media through the admin API (Synapse guide §4.3.2: monthly, 30 days)."""

    enabled: bool | None = Field(
        default=None,
        json_schema_extra={"default_text": "where the backup job runs and `synapse.admin_username` is set"},
        description="Run the purge (on the backup container's scheduler, as the admin account).",
    )
    schedule: CronExpression = Field(default="0 4 1 * *", description="When (cron, in backup.timezone); default monthly.")
    max_age_days: int = Field(default=30, ge=1, le=3650, description="Purge remote media not accessed for this many days.")


class StateCompression(Settings):
    """Synapse's state tables compressed by synapse_auto_compressor on a schedule of the backup container."""

    enabled: bool | None = Field(
        default=None,
        json_schema_extra={"default_text": "staging and prod, where the backup job runs"},
        description="Run the compressor (on the backup container's scheduler).",
    )
    schedule: CronExpression = Field(default="30 4 * * *", description="When (cron, in backup.timezone); default daily.")
    chunk_size: int = Field(default=500, ge=10, le=100000, description="State groups compressed together in one chunk.")
    number_of_chunks: int = Field(default=100, ge=1, le=100000, description="Chunks one run works through at most.")
    levels: str = Field(
        default="100,50,25", pattern=r"^[1-9]\d*(,[1-9]\d*)*$", description="The compressor's level sizes, e.g. '100,50,25'."
    )


class SynapseSettings(Settings):
    """The Matrix homeserver."""

    enabled: bool = Field(default=True, description="Deploy the homeserver.")
    server_name: DomainName = Field(description="The Matrix domain in user IDs (@alice:server_name).")
    public_host: DomainName | None = Field(
        default=None,
        json_schema_extra={"default_text": "`synapse.server_name`"},
        description="Host name clients and servers reach Synapse at (delegated through .well-known).",
    )
    public_baseurl: HttpUrl | None = Field(
        default=None,
        json_schema_extra={"default_text": "`https://<public_host>/`"},
        description="URL clients use (http:// when TLS is off).",
    )
    registration: RegistrationMode = Field(
        description="'open' (anyone, no verification: the guide's setting), 'token' (registration tokens), 'closed'."
    )
    admin_username: Localpart | None = Field(
        default=None, description="Admin account created on first deploy; its password is secret config or generated."
    )
    registration_token_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description=(
            "With registration 'token': days the token stays valid, counted from the deploy that sets the token, "
            "the admin password or this value (default: no end); after that, set a new synapse_registration_token and deploy."
        ),
    )
    http_bind: IpAddress = Field(default="127.0.0.1", description="Host address the client port is published on.")
    http_port: Port = Field(default=8008, description="Host port of Synapse's client/federation listener.")
    wellknown_port: Port = Field(default=8080, description="Host port of the .well-known server.")
    identity_server: HttpUrl | None = Field(default=None, description="Identity server advertised in well-known.")
    guest_access: bool = Field(
        default=False,
        description=(
            "Let guests (accounts without a password, made by any client) read and join rooms that allow them; "
            "off, as in the guide: guests count against registration and rate limits and are rarely wanted."
        ),
    )
    web_client_location: HttpUrl | None = Field(
        default=None,
        description=(
            "Where a browser that opens the homeserver's address is sent (Synapse's web_client_location), "
            "e.g. an Element Web; unset: no redirect."
        ),
    )
    trusted_key_servers: list[DomainName] = Field(
        default=["matrix.org"], description="Servers trusted to vouch for other servers' keys."
    )
    max_upload_size: UploadSize = Field(description="Largest upload, e.g. '8M'; default from the profile.")
    presence: bool = Field(description="Online status; off on the small profile to save CPU.")
    metrics: bool = Field(description="Prometheus metrics listener on port 9000 inside the stack network.")
    workers: bool = Field(
        description=(
            "Run Synapse as a main process and workers with Redis (past one core); "
            "default from the profile: on for medium and large."
        )
    )
    log_level: LogLevel = Field(description="Synapse's log level; default from the environment.")
    retention: MessageRetention = Field(default=MessageRetention(), description="Message retention policy.")
    media_retention: MediaRetention = Field(default=MediaRetention(), description="Synapse's own media lifetimes.")
    remote_media_purge: RemoteMediaPurge = Field(default=RemoteMediaPurge(), description="Scheduled remote media purge.")
    state_compression: StateCompression = Field(default=StateCompression(), description="Scheduled state compression.")
    extra_config: dict[str, Any] = Field(
        default_factory=dict, description="Merged over the rendered homeserver.yaml (operator's last word)."
    )

    @model_validator(mode="after")
    def _token_registration_needs_admin(self) -> SynapseSettings:
        if self.registration == "token" and self.admin_username is None:
            raise ValueError(
                "admin_username is required when registration is 'token': the deploy creates the first "
                "registration token through the admin API (or set registration to 'closed')"
            )
        return self

    @property
    def host(self) -> str:
        """Where Synapse is reached: public_host, or server_name when no delegation is set."""
        return self.public_host or self.server_name


WHISPER_PARAMETERS_M = {"tiny": 39, "base": 74, "small": 244, "medium": 769, "large": 1550}
"""Millions of parameters of each Whisper model (openai/whisper's model card)."""
COMPUTE_TYPE_BYTES = {"int8": 1, "float16": 2, "float32": 4}
WHISPER_WORKING_FACTOR = 1.5
"""Peak memory over the weights while recognising: faster-whisper's published figure for large-v3
in int8 on the CPU is 2,261 MB for 1,550 M parameters (1.46)."""
VOICEGROW_SERVER_MB = 256
"""The server's own memory beside the model (the guide's API, WebSockets and clients)."""


class AsrSettings(Settings):
    """Speech recognition inside the VoiceGrow server (guide §4.1.2)."""

    model_size: Literal["tiny", "base", "small", "medium", "large"] = Field(default="small", description="Whisper model size.")
    device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description=(
            "Where the model runs; 'cuda' gives the server every GPU of the host (the NVIDIA Container Toolkit "
            "must be installed; the preflight checks) and is not available with orchestrator swarm."
        ),
    )
    compute_type: Literal["int8", "float16", "float32"] = Field(default="int8", description="Model precision.")
    language: str = Field(default="zh", pattern=r"^[a-z]{2,3}$", description="Recognition language code.")
    timeout: int = Field(default=30, ge=1, le=600, description="Seconds per recognition.")

    def memory_needed_mb(self) -> int:
        """The server's memory with the model on the CPU (on a GPU the weights are in the GPU's memory)."""
        if self.device == "cuda":
            return VOICEGROW_SERVER_MB
        weights = WHISPER_PARAMETERS_M[self.model_size] * COMPUTE_TYPE_BYTES[self.compute_type]
        return math.ceil(weights * WHISPER_WORKING_FACTOR) + VOICEGROW_SERVER_MB


class TtsSettings(Settings):
    """Text to speech through the ai-manager service (guide §4.1.3); keys are secret config."""

    base_url: HttpUrl = Field(default="http://ai-manager:8000", description="ai-manager address.")
    voice_zh: str = Field(default="zh-CN-Neural2-C", min_length=1, description="Chinese voice.")
    voice_en: str = Field(default="en-US-Neural2-C", min_length=1, description="English voice.")
    speaking_rate: float = Field(default=0.9, ge=0.25, le=4.0, description="Speaking rate, 0.25 to 4.0.")
    pitch: float = Field(default=0.0, ge=-20.0, le=20.0, description="Pitch, -20 to 20.")
    timeout: int = Field(default=30, ge=1, le=600, description="Request timeout in seconds.")


class LlmSettings(Settings):
    """The language model through ai-manager (guide §4.1.4); keys default to TTS's."""

    base_url: HttpUrl = Field(default="http://ai-manager:8000", description="ai-manager address.")
    model: str = Field(default="gemini-2.0-flash-exp", min_length=1, description="Preferred model.")
    max_tokens: int = Field(default=300, ge=1, le=100000, description="Largest answer in tokens.")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature, 0.0 to 2.0.")
    timeout: int = Field(default=30, ge=1, le=600, description="Request timeout in seconds.")


class MysqlSettings(Settings):
    """MySQL server settings rendered into my.cnf (guide §3.3.1)."""

    max_connections: int = Field(
        default=200,
        ge=10,
        le=10000,
        description=(
            "max_connections. resources.mysql.memory must hold innodb_buffer_pool_size (from the profile) "
            f"+ max_connections x {MYSQL_CONNECTION_BUFFERS_KB} KB of connection buffers + {MYSQL_SERVER_MB} MB for the server."
        ),
    )
    time_zone: str = Field(default="+08:00", pattern=r"^[+-]\d{2}:\d{2}$", description="default-time-zone.")
    init_sql: str | None = Field(default=None, description="SQL file (path from the project) run once on first start.")
    native_password: bool = Field(
        default=False,
        description=(
            "Load mysql_native_password (off by default since MySQL 8.4) for accounts not yet moved to "
            "caching_sha2_password: a stopgap while upgrading from 8.0 (MySQL 9 removes the plugin)."
        ),
    )


class VoiceGrowSettings(Settings):
    """The VoiceGrow backend: MySQL, Redis, MinIO and the server replicas."""

    enabled: bool = Field(default=False, description="Deploy VoiceGrow (needs server_image or server_source).")
    server_image: ImageRef | None = Field(default=None, description="The operator's server image reference.")
    server_source: str | None = Field(
        default=None, description="Directory with the server's source and Dockerfile, built on deploy."
    )
    replicas: int = Field(ge=1, le=16, description="Server containers; default per environment.")
    bind: IpAddress = Field(default="127.0.0.1", description="Host address the server ports are published on.")
    allow_public_direct_ports: bool = Field(
        default=False,
        description="staging/prod: allow `bind` off loopback, for devices that must reach the servers directly "
        "(plain ws:// and http://, beside the proxy's TLS).",
    )
    ws_port: Port = Field(
        default=4399, description="Host WebSocket port of replica 1; replica N publishes ws_port + N - 1 (ports must not collide)."
    )
    http_port: Port = Field(
        default=8000, description="Host HTTP port of replica 1; replica N publishes http_port + N - 1 (ports must not collide)."
    )
    publish_data_ports: bool = Field(
        default=False, description="dev only: publish MySQL, Redis and MinIO on 127.0.0.1 for local tools."
    )
    secret_files: bool = Field(
        default=False,
        description=(
            "The server reads each secret from the file named by `<NAME>_FILE` (e.g. `MYSQL_PASSWORD_FILE`), "
            "0400 and owned by its user; off: secrets are environment variables, for a server without that support."
        ),
    )
    debug: bool = Field(description="DEBUG; default on only in dev.")
    log_level: LogLevel = Field(description="LOG_LEVEL; default per environment.")
    workers: int = Field(default=1, ge=1, le=64, description="WORKERS per replica.")
    bucket: str = Field(default="voicegrow", pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="MinIO bucket.")
    asr: AsrSettings = AsrSettings()
    tts: TtsSettings = TtsSettings()
    llm: LlmSettings = LlmSettings()
    mysql: MysqlSettings = MysqlSettings()
    redis_maxclients: int = Field(default=1000, ge=10, le=100000, description="Redis maxclients.")
    ws_host: DomainName | None = Field(default=None, description="Public host of the WebSocket endpoint (the guide's ws.).")
    api_host: DomainName | None = Field(default=None, description="Public host of the HTTP API (the guide's api.).")
    console_host: DomainName | None = Field(default=None, description="Public host of the MinIO console; off when unset.")

    @model_validator(mode="after")
    def _server_has_one_origin(self) -> VoiceGrowSettings:
        if self.enabled and (self.server_image is None) == (self.server_source is None):
            raise ValueError(
                "server_image or server_source is required (exactly one) when VoiceGrow is enabled: "
                "an image reference like 'registry.example.com/voicegrow/server:1.0.0', or a directory with a Dockerfile"
            )
        if self.server_source is not None and not (Path(self.server_source) / "Dockerfile").is_file():
            raise ValueError(f"server_source must be a directory with a Dockerfile, got {self.server_source!r}")
        if self.mysql.init_sql is not None and not Path(self.mysql.init_sql).is_file():
            raise ValueError(f"mysql.init_sql must be an existing SQL file, got {self.mysql.init_sql!r}")
        return self

    def host_port(self, base: int, replica: int) -> int:
        """Host port of one replica (numbered from 1) for a base port."""
        return base + replica - 1


class EdgeRateLimit(Settings):
    """Requests one client address may make to an endpoint: a steady rate, and a burst above it answered at once."""

    rate: str = Field(pattern=r"^[1-9][0-9]*r/[sm]$", description="Steady rate, e.g. '10r/m' (per minute) or '1r/s'.")
    burst: int = Field(ge=0, le=10000, description="Requests above the rate let through at once before 429.")


class EdgeRateLimits(Settings):
    """nginx's limit_req per client address, ahead of Synapse's own rate limits: 429 with Matrix's M_LIMIT_EXCEEDED."""

    enabled: bool = Field(default=True, description="Limit the endpoints below at the proxy.")
    login: EdgeRateLimit = Field(
        default=EdgeRateLimit(rate="10r/m", burst=10), description="POST and GET /_matrix/client/*/login (password guessing)."
    )
    registration: EdgeRateLimit = Field(
        default=EdgeRateLimit(rate="10r/m", burst=10),
        description="/_matrix/client/*/register (a registration takes two or three requests).",
    )
    media_upload: EdgeRateLimit = Field(
        default=EdgeRateLimit(rate="30r/m", burst=20), description="/_matrix/media/*/upload and /create (disk filling)."
    )


class ProxySettings(Settings):
    """The nginx in front of both systems, and how it gets its certificates."""

    enabled: bool = Field(default=True, description="Deploy the reverse proxy.")
    bind: IpAddress = Field(default="0.0.0.0", description="Host address the proxy listens on.")
    http_port: Port = Field(default=80, description="Host port for HTTP (ACME challenges, redirects).")
    https_port: Port = Field(default=443, description="Host port for HTTPS.")
    federation_port: Port | None = Field(default=None, description="Also serve Matrix federation on this port (e.g. 8448).")
    admin_allowlist: list[str] = Field(
        default_factory=list, description="Addresses/CIDRs allowed to reach /_synapse/admin; empty = nobody."
    )
    hsts_include_subdomains: bool = Field(
        default=False,
        description="HSTS also for every subdomain of the proxied hosts (browsers then refuse plain HTTP on all of them for two years).",
    )
    rate_limits: EdgeRateLimits = Field(
        default=EdgeRateLimits(), description="Per-address limits on login, registration and media upload (429)."
    )
    acme_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", description="Let's Encrypt account e-mail (required with tls 'acme').")
    acme_staging: bool = Field(default=False, description="Use Let's Encrypt's staging endpoint (untrusted test certificates).")
    acme_renew_hours: int = Field(default=12, ge=1, le=168, description="Hours between renewal attempts.")
    acme_directory: HttpUrl | None = Field(
        default=None, description="Directory URL of another ACME CA (e.g. an internal step-ca); default: Let's Encrypt."
    )
    acme_directory_ca: str | None = Field(
        default=None, description="PEM certificate(s) the ACME directory's HTTPS is verified with, for a private CA."
    )

    @model_validator(mode="after")
    def _allowlist_entries_are_networks(self) -> ProxySettings:
        for entry in self.admin_allowlist:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"admin_allowlist entries must be addresses or CIDRs like '203.0.113.0/24', got {entry!r}") from None
        return self

    @model_validator(mode="after")
    def _acme_directory_is_one_choice(self) -> ProxySettings:
        if self.acme_directory is not None and self.acme_staging:
            raise ValueError("acme_staging selects Let's Encrypt's staging directory: unset it when acme_directory is set")
        if self.acme_directory is not None and not self.acme_directory.startswith("https://"):
            raise ValueError("acme_directory must be an https:// URL (ACME servers speak HTTPS only)")
        if self.acme_directory_ca is not None:
            if self.acme_directory is None:
                raise ValueError("acme_directory_ca needs acme_directory (Let's Encrypt is trusted already)")
            try:
                x509.load_pem_x509_certificates(self.acme_directory_ca.encode())
            except ValueError:
                raise ValueError("acme_directory_ca must be PEM certificates (-----BEGIN CERTIFICATE----- ...)") from None
        return self


OFFSITE_CRYPT_REMOTE = "offsite-crypt"
"""The rclone remote the deployment adds to the operator's rclone.conf to encrypt offsite copies."""


class OffsiteSettings(Settings):
    """Copy of every archive to a remote with rclone (Synapse guide §8.3); the rclone config is secret."""

    enabled: bool = Field(default=False, description="Copy archives offsite (needs the secret backup_rclone_config).")
    remote: str = Field(
        default="offsite:backups",
        pattern=r"^[A-Za-z0-9_-]+:\S*$",
        description="rclone destination, remote:path; each stack writes into its own directory `<project>-<stack>` under it.",
    )
    keep_days: int = Field(default=30, ge=1, le=3650, description="Delete offsite archives older than this many days...")
    keep_count: int = Field(default=1000, ge=1, le=100000, description="...and beyond this many newest offsite archives.")
    encrypt: bool = Field(
        default=True,
        description="Encrypt archives (content and names) with rclone's crypt before they leave the host; the keys are "
        "the secrets backup_offsite_password and backup_offsite_salt, generated once unless set.",
    )


BACKUP_PARTS = ("synapse", "mysql", "media", "bucket")
"""The parts of a backup, each with its own schedule and retention, in restore order."""


class PartSchedules(Settings):
    """A schedule of its own for a part of the backup (VoiceGrow guide §6.1: MySQL daily, MinIO weekly).

    A part without one (null) follows `backup.schedule`."""

    synapse: CronExpression | None = Field(default=None, description="Synapse's database and signing key.")
    mysql: CronExpression | None = Field(default=None, description="VoiceGrow's MySQL database.")
    media: CronExpression | None = Field(
        default=None, description="Synapse's media store; default weekly (Sunday 03:00), daily (03:30) in prod."
    )
    bucket: CronExpression | None = Field(
        default=None, description="VoiceGrow's MinIO bucket; default weekly (Sunday 03:00), daily (03:30) in prod."
    )


class PartRetention(Settings):
    """How long the copies of one part are kept."""

    keep_days: int = Field(default=7, ge=1, le=3650, description="Delete copies older than this many days...")
    keep_count: int = Field(default=7, ge=1, le=10000, description="...and beyond this many newest copies.")


class BackupRetention(Settings):
    """Each part's retention; an archive is deleted only when no part it holds keeps it."""

    synapse: PartRetention = Field(
        default=PartRetention(), description="Default 7 days and 7 copies; in prod 2 days and 48 (hourly) copies."
    )
    mysql: PartRetention = Field(
        default=PartRetention(), description="Default 7 days and 7 copies; in prod 2 days and 48 (hourly) copies."
    )
    media: PartRetention = Field(
        default=PartRetention(), description="Default 14 days and 2 (weekly) copies; in prod 7 days and 7 (daily) copies."
    )
    bucket: PartRetention = Field(
        default=PartRetention(), description="Default 14 days and 2 (weekly) copies; in prod 7 days and 7 (daily) copies."
    )


class BackupSettings(Settings):
    """Scheduled online backups with retention, and where they are kept."""

    renamed: ClassVar[dict[str, str]] = {
        key: (
            f"to backup.retention.<part>.{key}, one per part ({', '.join(BACKUP_PARTS)}): write it as "
            f"retention: {{{{synapse: {{{{{key}: {{value}}}}}}, mysql: ...}}}} and remove backup.{key}"
        )
        for key in ("keep_days", "keep_count")
    }

    enabled: bool = Field(description="Run the backup job; default per environment (off in dev).")
    schedule: CronExpression = Field(description="When to back up (cron, in `timezone`); default daily, hourly in prod.")
    timezone: TimeZoneName = Field(
        default="UTC", description="IANA time zone the schedules are read in, e.g. 'Asia/Shanghai' (the guides' 02:00 local)."
    )
    part_schedules: PartSchedules = Field(
        default=PartSchedules(), description="Parts backed up on a schedule of their own instead of `schedule`."
    )
    retention: BackupRetention = Field(default=BackupRetention(), description="How long each part's copies are kept.")

    def part_plans(self, parts: list[str], at: datetime) -> dict[str, PartPlan]:
        """Each of `parts` with the schedule it follows and its retention, to project the archives' size."""
        plans = {}
        for part in parts:
            expression = getattr(self.part_schedules, part) or self.schedule
            rule = getattr(self.retention, part)
            runs_per_day = CronSchedule.parse(expression, self.timezone).runs_per_day(at)
            plans[part] = PartPlan(expression, runs_per_day, Retention(rule.keep_days, rule.keep_count))
        return plans
    host_path: str | None = Field(default=None, pattern=r"^/\S+$", json_schema_extra={"default_text": "the volume `<prefix>-backup`"}, description="Host directory for the archives.")
    timeout_minutes: int = Field(
        default=120, ge=1, le=1440, description="A run still going after this long is stopped and counts as failed."
    )
    before_changes: bool = Field(
        default=True,
        description="Back up before a deploy replaces a container that holds data (PostgreSQL, Synapse, MySQL, "
        "Redis, MinIO, the VoiceGrow server); a failed backup stops the deploy.",
    )
    offsite: OffsiteSettings = OffsiteSettings()


SwarmNodeKind = Literal["data", "app", "ingress"]


class SwarmSettings(Settings):
    """The nodes of a Docker Swarm and what each runs (with `orchestrator: swarm`)."""

    nodes: dict[str, list[SwarmNodeKind]] = Field(
        default_factory=dict,
        description=(
            "Node (hostname or id, as `docker node ls` shows it) -> what it runs: 'data' (the databases, "
            "object store and Synapse with their volumes: exactly one node), 'app' (stateless replicas and "
            "workers) and 'ingress' (the proxy's published ports). The program labels the nodes; services "
            "are placed by those labels, never by hostname."
        ),
    )

    @model_validator(mode="after")
    def _one_data_node_and_somewhere_for_the_rest(self) -> SwarmSettings:
        if not self.nodes:
            return self
        counts = {kind: sum(kind in kinds for kinds in self.nodes.values()) for kind in ("data", "app", "ingress")}
        if counts["data"] != 1:
            raise ValueError(
                f"nodes gives 'data' to {counts['data']} nodes: give it to exactly one (data volumes are local "
                "to a node, so a database must not move to another one)"
            )
        for kind in ("app", "ingress"):
            if counts[kind] == 0:
                raise ValueError(f"nodes gives '{kind}' to no node: add it to at least one")
        return self


class HealerSettings(Settings):
    """The container that restarts the stack's containers that stay unhealthy (it holds the Docker socket)."""

    enabled: bool = Field(
        default=True,
        json_schema_extra={"default_text": "`true`; `false` with `orchestrator: swarm` (Swarm replaces unhealthy tasks itself)"},
        description="Restart containers that stay unhealthy (Docker restarts only those that exit).",
    )
    interval_seconds: int = Field(
        default=10, ge=5, le=300, description="Seconds between two looks for unhealthy containers."
    )
    docker_socket: str = Field(
        default="/var/run/docker.sock",
        pattern=r"^/\S+$",
        description="The engine's socket on the Docker host (a rootless engine's is `/run/user/<uid>/docker.sock`); full monitoring's engine API filter opens it too.",
    )


class FirewallAllow(Settings):
    """One more port the host firewall lets in, beyond SSH and the stack's public ports."""

    port: Port = Field(description="Host port to let in.")
    protocol: Literal["tcp", "udp"] = Field(default="tcp", description="'tcp' or 'udp'.")
    source: str = Field(default="any", description="Address or CIDR allowed to reach it, or 'any'.")

    @field_validator("source")
    @classmethod
    def _source_is_a_network(cls, source: str) -> str:
        if source == "any":
            return source
        try:
            return str(ipaddress.ip_network(source, strict=False))
        except ValueError:
            raise ValueError(f"must be 'any' or an address or CIDR like '203.0.113.0/24', got {source!r}") from None


class FirewallSettings(Settings):
    """The Docker host's firewall (ufw), applied over SSH from the ports the stack publishes."""

    enabled: bool = Field(
        json_schema_extra={"default_text": "on when `docker.host` is `ssh://`"},
        description="Manage the host's ufw rules and Docker's DOCKER-USER chain (docs/security.md: Host firewall).",
    )
    host: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9.:\[\]-]+$", json_schema_extra={"default_text": "`docker.host`'s"}, description="SSH host of the firewall."
    )
    user: str | None = Field(
        default=None, pattern=r"^[a-z_][a-z0-9_.-]*$", json_schema_extra={"default_text": "`docker.host`'s, else `root`"}, description="SSH user (root, or passwordless sudo)."
    )
    ssh_port: Port | None = Field(
        default=None,
        json_schema_extra={"default_text": "`docker.host`'s, else `22`"},
        description="Port SSH connects to and the firewall always keeps open.",
    )
    host_key: str | None = Field(
        default=None,
        pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/=]+( .*)?$",
        json_schema_extra={"default_text": "none: not checked (required in prod)"},
        description="The host's SSH public key ('ssh-ed25519 AAAA...'), checked before the rules are sent.",
    )
    allow: list[FirewallAllow] = Field(
        default_factory=list, description="More ports to let in, each {port, protocol, source}."
    )


@dataclass(frozen=True)
class SshTarget:
    """Where the firewall's commands connect."""

    host: str
    user: str
    port: int


VOICEGROW_DATA_PORTS = {"MySQL": 3306, "Redis": 6379, "MinIO": 9000, "MinIO console": 9001}
"""Published on 127.0.0.1 with voicegrow.publish_data_ports (dev only)."""


@dataclass(frozen=True)
class PublishedPort:
    """One host port a stack publishes, with the settings that choose it and its address."""

    key: str
    bind_key: str | None
    address: str
    port: int

    def collides_with(self, other: PublishedPort) -> bool:
        """Same port on the same address, or on any address when either binds them all (0.0.0.0, ::)."""
        if self.port != other.port:
            return False
        mine, theirs = ipaddress.ip_address(self.address), ipaddress.ip_address(other.address)
        return mine == theirs or mine.is_unspecified or theirs.is_unspecified


@dataclass(frozen=True)
class RoleSettings:
    """One role as a stack runs it: the registry's facts with the stack's limits and relaxations."""

    role: Role
    limits: ContainerLimits
    security: SecurityPolicy


class StackSettings(Settings):
    """All settings of one stack, validated, with defaults resolved."""

    project: str
    stack: str
    environment: EnvironmentName = Field(
        json_schema_extra={"default_text": "the stack name"},
        description="dev, test, staging or prod: which of the per-environment defaults apply.",
    )
    profile: ProfileName = Field(default="small", description="Sizing profile: 'small' (1 vCPU / 2 GB), 'medium' (2 vCPU / 4 GB) or 'large' (8 vCPU / 16 GB, the VoiceGrow guide's production machine).")
    prefix: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$", description="Prefix of every container, network and volume name."
    )
    tls: TlsMode = Field(
        description="How clients reach the services: 'off', 'self-signed', 'files' (secrets tls_certificate and tls_private_key) or 'acme' (Let's Encrypt)."
    )
    monitoring: MonitoringSettings = Field(description="Monitoring level ('basic' or 'full'), retention, receivers and hosts.")
    protect_data: bool = Field(description="Protect data volumes from `pulumi destroy`; default on in staging/prod.")
    docker: DockerSettings = DockerSettings()
    orchestrator: Literal["containers", "swarm"] = Field(
        default="containers",
        description="'containers' on one Docker engine, or 'swarm': services of the Docker Swarm whose manager docker.host is.",
    )
    swarm: SwarmSettings = SwarmSettings()
    images: ImageSettings = ImageSettings()
    logging: LogRotation = LogRotation()
    resources: dict[str, ResourceOverride] = Field(
        default_factory=dict, description="Per-container limits replacing the profile's, keyed by role."
    )
    security: dict[str, SecurityOverride] = Field(
        default_factory=dict, description="Per-container relaxations of the hardening, keyed by role."
    )
    synapse: SynapseSettings
    voicegrow: VoiceGrowSettings
    proxy: ProxySettings = ProxySettings()
    backup: BackupSettings
    healer: HealerSettings = HealerSettings()
    firewall: FirewallSettings

    def backup_parts(self) -> list[str]:
        """The parts the backup job takes: Synapse's with Synapse, VoiceGrow's with VoiceGrow, in restore order."""
        present = {"synapse": self.synapse.enabled, "mysql": self.voicegrow.enabled, "media": self.synapse.enabled,
                   "bucket": self.voicegrow.enabled}
        return [part for part in BACKUP_PARTS if present[part]]

    def _refuse(self, problems: list[str]) -> None:
        """Refuse the settings naming every problem, each of which starts with its key."""
        if problems:
            raise ValueError(f"; {self.project}:".join(problems))

    @property
    def remote_media_purge_runs(self) -> bool:
        """Whether the backup container purges Synapse's remote media (synapse.remote_media_purge)."""
        possible = self.synapse.enabled and self.backup.enabled and self.synapse.admin_username is not None
        enabled = self.synapse.remote_media_purge.enabled
        return possible if enabled is None else enabled

    @property
    def state_compression_runs(self) -> bool:
        """Whether the backup container compresses Synapse's state tables (synapse.state_compression)."""
        enabled = self.synapse.state_compression.enabled
        if enabled is None:
            return self.synapse.enabled and self.backup.enabled and self.environment in ("staging", "prod")
        return enabled

    @model_validator(mode="after")
    def _state_compression_has_a_scheduler(self) -> StackSettings:
        if self.synapse.state_compression.enabled and not (self.synapse.enabled and self.backup.enabled):
            raise ValueError(
                "synapse.state_compression.enabled needs synapse and backup.enabled (the backup container runs "
                "the schedule): set backup.enabled or turn it off"
            )
        return self

    @model_validator(mode="after")
    def _remote_media_purge_has_a_scheduler_and_an_admin(self) -> StackSettings:
        possible = self.synapse.enabled and self.backup.enabled and self.synapse.admin_username is not None
        if self.synapse.remote_media_purge.enabled and not possible:
            raise ValueError(
                "synapse.remote_media_purge.enabled needs backup.enabled (the backup container runs the schedule) "
                "and synapse.admin_username (the purge calls the admin API as that account): set them or turn it off"
            )
        return self

    @model_validator(mode="after")
    def _prod_checks_the_firewall_hosts_key(self) -> StackSettings:
        if self.environment == "prod" and self.firewall.enabled and self.firewall.host_key is None:
            raise ValueError(
                "firewall.host_key is required in prod: without it the SSH connection that rewrites the host's "
                "firewall as root accepts any host key; set it to the host's key line, e.g. the output of "
                "`ssh-keyscan -t ed25519 HOST` without the host name ('ssh-ed25519 AAAA...')"
            )
        return self

    @model_validator(mode="after")
    def _firewall_has_an_ssh_host(self) -> StackSettings:
        if self.firewall.enabled and self.ssh_target() is None:
            raise ValueError(
                "firewall.enabled needs an SSH host to apply the rules on: set docker.host to ssh://user@host, "
                "or firewall.host (or set firewall.enabled to false)"
            )
        return self

    @model_validator(mode="after")
    def _swarm_runs_what_it_can_keep(self) -> StackSettings:
        if self.orchestrator != "swarm":
            if self.swarm.nodes:
                raise ValueError("swarm.nodes is only read with orchestrator: swarm: set orchestrator or remove swarm.nodes")
            return self
        problems = []
        if not self.swarm.nodes:
            problems.append(
                "orchestrator swarm needs swarm.nodes: name the nodes and what each runs, e.g. "
                '{"node-1": ["data", "app", "ingress"]} (the names `docker node ls` shows)'
            )
        if self.healer.enabled:
            problems.append("healer.enabled must be false with orchestrator swarm: Swarm replaces unhealthy tasks itself")
        if self.voicegrow.enabled and self.voicegrow.server_source is not None:
            problems.append(
                "voicegrow.server_source cannot be used with orchestrator swarm: an image built on one node is on no "
                "other; build and push it to your registry, then set voicegrow.server_image to it"
            )
        if self.voicegrow.enabled and self.voicegrow.asr.device == "cuda":
            problems.append(
                "voicegrow.asr.device 'cuda' is not available with orchestrator swarm: the Docker provider gives GPUs to "
                "containers only; run the stack on one engine, or the model on the CPU (voicegrow.asr.device: cpu)"
            )
        if self.voicegrow.enabled and not self.voicegrow.secret_files:
            problems.append(
                "voicegrow.secret_files must be true with orchestrator swarm: its secrets are Docker secrets there, "
                "never environment variables (your server reads <NAME>_FILE)"
            )
        if self.monitoring.level == "full":
            problems.append(
                "monitoring.level 'full' is not available with orchestrator swarm (its log and container collectors "
                "read each node's Docker socket): set monitoring.level to 'basic'"
            )
        if self.proxy.enabled and self.tls == "acme":
            problems.append(
                "tls 'acme' is not available with orchestrator swarm (the certificate volume would bind the proxy to the "
                "data node): use tls 'files' or 'self-signed'"
            )
        if self.proxy.enabled and self.proxy.bind != "0.0.0.0":
            problems.append(
                f"proxy.bind {self.proxy.bind} cannot be kept with orchestrator swarm: a service publishes its ports on "
                "every address of its node; set proxy.bind to 0.0.0.0 and let the firewall choose who reaches them"
            )
        self._refuse(problems)
        return self

    @model_validator(mode="after")
    def _direct_ports_stay_on_loopback(self) -> StackSettings:
        """In staging and prod, clients come through the proxy: its TLS, its allowlists, its rate limits."""
        if self.environment not in ("staging", "prod"):
            return self
        problems = []
        if self.synapse.enabled and not ipaddress.ip_address(self.synapse.http_bind).is_loopback:
            problems.append(
                f"synapse.http_bind {self.synapse.http_bind} publishes Synapse's own port off loopback in {self.environment}: "
                "its listener serves the admin API (/_synapse/admin) beside the client API, over plain HTTP and around "
                "the proxy's allowlist; keep 127.0.0.1 and reach Synapse through the proxy"
            )
        if self.voicegrow.enabled and not ipaddress.ip_address(self.voicegrow.bind).is_loopback and not self.voicegrow.allow_public_direct_ports:
            problems.append(
                f"voicegrow.bind {self.voicegrow.bind} publishes the servers' own ports off loopback in {self.environment}, "
                "plain ws:// and http:// beside the proxy's TLS: keep 127.0.0.1 and let devices connect through the proxy "
                "(voicegrow.ws_host), or set voicegrow.allow_public_direct_ports to true if they must reach the servers directly"
            )
        self._refuse(problems)
        return self

    @model_validator(mode="after")
    def _alerts_reach_someone(self) -> StackSettings:
        if self.environment in ("staging", "prod") and not self.monitoring.receivers:
            raise ValueError(
                f"monitoring.receivers is empty in {self.environment}: disk full, a failed backup or a service down "
                "would alert no one; list at least one of 'email', 'wecom', 'dingtalk', 'webhook' with its settings, "
                f"then send a test alert with `scripts/alert-test.sh {self.stack}`"
            )
        return self

    @model_validator(mode="after")
    def _acme_needs_an_email(self) -> StackSettings:
        if self.proxy.enabled and self.tls == "acme" and self.proxy.acme_email is None:
            raise ValueError("proxy.acme_email is required when tls is 'acme' (Let's Encrypt's account address)")
        return self

    @model_validator(mode="after")
    def _federation_port_needs_tls(self) -> StackSettings:
        if self.proxy.enabled and self.proxy.federation_port is not None and self.tls == "off":
            raise ValueError("proxy.federation_port needs tls other than 'off': Matrix federation is HTTPS only")
        return self

    @model_validator(mode="after")
    def _monitoring_hosts_need_the_proxy(self) -> StackSettings:
        if self.monitoring.hosts and not self.proxy.enabled:
            raise ValueError("monitoring hosts are served by the proxy: enable proxy or unset monitoring.*_host")
        if self.monitoring.hosts and self.tls == "off":
            raise ValueError("monitoring hosts need tls other than 'off': their logins must not cross the network in clear")
        return self

    @model_validator(mode="after")
    def _data_ports_only_in_dev(self) -> StackSettings:
        if self.voicegrow.publish_data_ports and self.environment != "dev":
            raise ValueError("voicegrow.publish_data_ports is allowed only in dev: data ports stay inside the stack network")
        return self

    @model_validator(mode="after")
    def _resources_name_known_roles(self) -> StackSettings:
        known = sorted(PROFILES[self.profile].limits)
        for key, roles in (("resources", self.resources), ("security", self.security)):
            for role in roles:
                if role not in known:
                    raise ValueError(f"{key}.{role} is not a container role; known roles: {', '.join(known)}")
        return self

    @model_validator(mode="after")
    def _staging_and_prod_images_are_pinned(self) -> StackSettings:
        # What `latest` means changes under a running stack: the next pull or rebuild upgrades it unasked.
        if self.environment not in ("staging", "prod"):
            return self
        references = {f"images.{name}": getattr(self.images, name) for name in ImageSettings.model_fields.keys() - ImageSettings.NOT_IMAGES}
        if self.voicegrow.enabled and self.voicegrow.server_image is not None:
            references["voicegrow.server_image"] = self.voicegrow.server_image
        for key, reference in sorted(references.items()):
            if image_tag(reference) in (None, "latest") and "@sha256:" not in reference:
                raise ValueError(
                    f"{key} must be pinned to a version in {self.environment}, not 'latest': "
                    "add a version tag (':1.2.3') or a digest ('@sha256:...')"
                )
        return self

    @model_validator(mode="after")
    def _published_ports_do_not_collide(self) -> StackSettings:
        problems = []
        if self.voicegrow.enabled:
            for name in ("ws_port", "http_port"):
                base = getattr(self.voicegrow, name)
                last = self.voicegrow.host_port(base, self.voicegrow.replicas)
                if last > 65535:
                    problems.append(
                        f"voicegrow.{name} {base} with voicegrow.replicas {self.voicegrow.replicas} publishes ports up to "
                        f"{last}, above 65535: lower one of them (replica N publishes the base port + N - 1)"
                    )
        ports = self.published_ports()
        for index, first in enumerate(ports):
            for second in ports[index + 1 :]:
                if first.collides_with(second):
                    problems.append(_collision(first, second))
        self._refuse(problems)
        return self

    @model_validator(mode="after")
    def _services_fit_their_memory(self) -> StackSettings:
        """Each database's settings, and the speech model, fit their container's memory limit (the database rules: config/profiles.py, their values: profiles.yaml)."""
        profile = PROFILES[self.profile]
        problems = []
        if self.synapse.enabled:
            tuning = profile.postgres
            pool, pool_key = self._synapse_db_pool()
            workers = self.synapse_worker_connections()
            worker_pools = f" + {workers} of synapse.workers' pools" if workers else ""
            connections = pool + workers + POSTGRES_OTHER_CONNECTIONS
            need, have = tuning.memory_needed_mb(connections), self.limits("postgres").memory_mb
            if need > have:
                problems.append(
                    f"resources.postgres.memory ({have} MB) is less than PostgreSQL can use with profile "
                    f"'{self.profile}': shared_buffers {tuning.shared_buffers} + {POSTGRES_AUTOVACUUM_WORKERS} autovacuum "
                    f"workers x maintenance_work_mem {tuning.maintenance_work_mem} + {connections} connections ({pool_key} "
                    f"{pool}{worker_pools} + {POSTGRES_OTHER_CONNECTIONS} others) x (work_mem {tuning.work_mem} + {POSTGRES_BACKEND_MB} MB) "
                    f"+ {POSTGRES_SERVER_MB} MB = {need} MB: "
                    f"set resources.postgres.memory to at least {need}M"
                    + (f" or lower {pool_key}" if pool_key.startswith("synapse.") else "")
                    + (" or turn synapse.workers off" if workers else "")
                )
        if self.voicegrow.enabled:
            tuning = profile.voicegrow
            max_connections = self.voicegrow.mysql.max_connections
            need, have = tuning.mysql_memory_needed_mb(max_connections), self.limits("mysql").memory_mb
            if need > have:
                problems.append(
                    f"resources.mysql.memory ({have} MB) is less than MySQL can use: innodb_buffer_pool_size "
                    f"{tuning.mysql_buffer_pool} (profile '{self.profile}') + voicegrow.mysql.max_connections "
                    f"{max_connections} x {MYSQL_CONNECTION_BUFFERS_KB} KB of connection buffers + {MYSQL_SERVER_MB} MB "
                    f"= {need} MB: "
                    f"set resources.mysql.memory to at least {need}M or lower voicegrow.mysql.max_connections"
                )
            asr = self.voicegrow.asr
            need, have = asr.memory_needed_mb(), self.limits("voicegrow_server").memory_mb
            if need > have:
                problems.append(
                    f"resources.voicegrow_server.memory ({have} MB) is less than speech recognition needs on the CPU: "
                    f"voicegrow.asr.model_size '{asr.model_size}' has {WHISPER_PARAMETERS_M[asr.model_size]} M parameters "
                    f"x {COMPUTE_TYPE_BYTES[asr.compute_type]} byte(s) (compute_type {asr.compute_type}) x {WHISPER_WORKING_FACTOR} "
                    f"while recognising + {VOICEGROW_SERVER_MB} MB for the server = {need} MB: set "
                    f"resources.voicegrow_server.memory to at least {need}M, or a smaller voicegrow.asr.model_size or "
                    "compute_type, or run it on a GPU (voicegrow.asr.device: cuda)"
                )
            need, have = tuning.redis_memory_needed_mb(), self.limits("redis").memory_mb
            if need > have:
                problems.append(
                    f"resources.redis.memory ({have} MB) leaves too little room above Redis's maxmemory "
                    f"{tuning.redis_maxmemory} (profile '{self.profile}'): maxmemory may take three quarters of the "
                    "container at most, the rest holds the copy-on-write pages of the child Redis forks to save "
                    f"and rewrite its data, client buffers and fragmentation: set resources.redis.memory to at least {need}M"
                )
        self._refuse(problems)
        return self

    def synapse_worker_connections(self) -> int:
        """The database connections Synapse's workers open (0 without workers)."""
        if not self.synapse.workers:
            return 0
        plan = PROFILES[self.profile].synapse_workers
        return len(synapse_workers(plan)) * plan.db_pool_max

    def _synapse_db_pool(self) -> tuple[int, str]:
        """Synapse's database pool size and the setting it comes from (extra_config may set it)."""
        database = self.synapse.extra_config.get("database")
        args = database.get("args") if isinstance(database, dict) else None
        if isinstance(args, dict) and type(args.get("cp_max")) is int:
            return args["cp_max"], "synapse.extra_config database.args.cp_max"
        return PROFILES[self.profile].synapse.db_pool_max, f"profile '{self.profile}' database pool"

    def published_ports(self) -> list[PublishedPort]:
        """Every host port the stack's containers publish, as the components publish them."""
        ports = []
        if self.synapse.enabled:
            bind = self.synapse.http_bind
            ports.append(PublishedPort("synapse.http_port", "synapse.http_bind", bind, self.synapse.http_port))
            ports.append(PublishedPort("synapse.wellknown_port", "synapse.http_bind", bind, self.synapse.wellknown_port))
        if self.voicegrow.enabled:
            voicegrow = self.voicegrow
            for replica in range(1, voicegrow.replicas + 1):
                for name, base in (("ws_port", voicegrow.ws_port), ("http_port", voicegrow.http_port)):
                    key = f"voicegrow.{name}" + (f" (replica {replica})" if voicegrow.replicas > 1 else "")
                    ports.append(PublishedPort(key, "voicegrow.bind", voicegrow.bind, voicegrow.host_port(base, replica)))
            if voicegrow.publish_data_ports:
                for service, port in VOICEGROW_DATA_PORTS.items():
                    ports.append(PublishedPort(f"voicegrow.publish_data_ports ({service})", None, "127.0.0.1", port))
        if self.proxy.enabled and (self.synapse.enabled or self.voicegrow.enabled):
            proxy = self.proxy
            ports.append(PublishedPort("proxy.http_port", "proxy.bind", proxy.bind, proxy.http_port))
            if self.tls != "off":
                ports.append(PublishedPort("proxy.https_port", "proxy.bind", proxy.bind, proxy.https_port))
                if proxy.federation_port is not None:
                    ports.append(PublishedPort("proxy.federation_port", "proxy.bind", proxy.bind, proxy.federation_port))
        return ports

    def public_ports(self) -> list[PublishedPort]:
        """The published ports meant to be reached from outside: those not bound to a loopback address."""
        return [port for port in self.published_ports() if not ipaddress.ip_address(port.address).is_loopback]

    def ssh_target(self) -> SshTarget | None:
        """The firewall's SSH host, user and port: its own settings over docker.host's ssh:// parts."""
        docker_host = urlsplit(self.docker.host) if self.docker.host and self.docker.host.startswith("ssh://") else None
        host = self.firewall.host or (docker_host.hostname if docker_host else None)
        if host is None:
            return None
        user = self.firewall.user or (docker_host.username if docker_host else None) or "root"
        port = self.firewall.ssh_port or (docker_host.port if docker_host else None) or 22
        return SshTarget(host=host, user=user, port=port)

    @property
    def proxied_hosts(self) -> list[str]:
        """The public hosts the proxy answers for, as the enabled components route them."""
        hosts = [self.synapse.host, self.synapse.server_name] if self.synapse.enabled else []
        if self.voicegrow.enabled:
            hosts += [self.voicegrow.ws_host, self.voicegrow.api_host, self.voicegrow.console_host]
        hosts += self.monitoring.hosts
        return [host for host in dict.fromkeys(hosts) if host]

    def limits(self, role: str) -> ContainerLimits:
        """The profile's limits for a container role, with the stack's overrides applied."""
        base = PROFILES[self.profile].limits[role]
        override = self.resources.get(role, ResourceOverride())
        memory_mb = override.memory or base.memory_mb
        return ContainerLimits(
            memory_mb=memory_mb,
            reservation_mb=override.reservation or min(base.reservation_mb, memory_mb),
            cpu_weight=override.cpu_weight or base.cpu_weight,
            cpus=override.cpus or base.cpus,
        )

    def security_policy(self, role: str) -> SecurityPolicy:
        """How a container role is confined, with the stack's relaxations applied."""
        policy = ROLES[role].security
        override = self.security.get(role, SecurityOverride())
        return replace(
            policy,
            user=override.user if override.user is not None else policy.user,
            capabilities=tuple(dict.fromkeys((*policy.capabilities, *override.capabilities))),
            read_only=policy.read_only if override.read_only is None else override.read_only,
            pids_limit=override.pids_limit or policy.pids_limit,
        )

    def role(self, name: str) -> RoleSettings:
        """The role `name` as this stack runs it: its limits and policy with the stack's overrides."""
        return RoleSettings(ROLES[name], self.limits(name), self.security_policy(name))

    def runs(self, role: Role) -> bool:
        """Whether this stack runs containers of `role`."""
        deployed = self.synapse.enabled or self.voicegrow.enabled
        monitoring = self.monitoring
        by_component = {
            "synapse": self.synapse.enabled,
            "voicegrow": self.voicegrow.enabled,
            "proxy": self.proxy.enabled and deployed,
            "backup": self.backup.enabled and deployed,
            "healer": self.healer.enabled and deployed,
            "monitoring": True,
        }
        by_role = {
            "synapse_worker": self.synapse.workers,
            "synapse_redis": self.synapse.workers,
            "acme": self.tls == "acme",
            "dingtalk": "dingtalk" in monitoring.receivers,
            **{name: monitoring.full for name in FULL_ROLES},
            "postgres_exporter": monitoring.full and self.synapse.enabled,
            "mysql_exporter": monitoring.full and self.voicegrow.enabled,
            "redis_exporter": monitoring.full and self.voicegrow.enabled,
        }
        return by_component[role.component] and by_role.get(role.name, True)

    def images_of(self, roles: dict[str, RoleSettings]) -> dict[str, str]:
        """The references to pull of the images `roles` run, by image setting."""
        return {role.role.image: self.images.reference(role.role.image) for role in roles.values() if role.role.image}

    def roles_of(self, component: str) -> dict[str, RoleSettings]:
        """The roles of `component` this stack runs, as it runs them (in the registry's order)."""
        return {name: self.role(name) for name, role in ROLES.items() if role.component == component and self.runs(role)}


def _collision(first: PublishedPort, second: PublishedPort) -> str:
    """The error for two published ports that cannot both be bound, and how to fix it."""
    if first.address == second.address:
        where = first.address
    else:
        where = f"{first.address} and {second.address} (an unspecified address such as 0.0.0.0 takes the port on every address)"
    fix = "give one of them another port"
    binds = [port.bind_key for port in (first, second) if port.bind_key]
    if len(set(binds)) == 2:
        fix += f", or bind them to different specific addresses ({binds[0]}, {binds[1]})"
    if "replica" in first.key + second.key:
        fix += "; replica N publishes the base port + N - 1"
    return f"{first.key} and {second.key} both publish port {first.port} on {where}: {fix}"
