"""Pydantic models of every stack setting, after environment and profile defaults are merged in.

Each model forbids unknown keys, so a misspelt setting fails instead of being ignored.
Field descriptions are the settings reference; README.md mirrors them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.environments import EnvironmentName, LogLevel, Monitoring, RegistrationMode, TlsMode
from config.profiles import PROFILES, ContainerLimits, ProfileName
from config.types import (
    Cpus,
    DomainName,
    HttpUrl,
    ImageRef,
    IpAddress,
    Localpart,
    MemoryMB,
    Port,
    UploadSize,
    image_tag,
)


class Settings(BaseModel):
    """Base of every settings model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DockerSettings(Settings):
    """Where the containers run."""

    host: str | None = Field(
        default=None,
        description="Docker daemon address, e.g. 'ssh://deploy@vps.example.com'; empty = the local engine.",
        pattern=r"^(unix|tcp|ssh)://\S+$",
    )


class ImageSettings(Settings):
    """Every image the program runs: pinned references and an optional registry mirror."""

    registry_mirror: str | None = Field(
        default=None,
        description="Registry host (and path) that mirrors Docker Hub, e.g. 'mirror.example.cn/dockerhub'.",
        pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$",
    )
    postgres: ImageRef = Field(default="postgres:16.10-bookworm", description="PostgreSQL server for Synapse.")
    synapse: ImageRef = Field(default="matrixdotorg/synapse:v1.163.2", description="Matrix Synapse homeserver.")
    nginx: ImageRef = Field(default="nginx:1.27.5-alpine", description="nginx for .well-known and the proxy.")

    def reference(self, image: str) -> str:
        """The reference to pull for one image, rewritten to the mirror when one is set.

        Only Docker Hub references are mirrored; one naming its own registry is used as is.
        """
        reference: str = getattr(self, image)
        if self.registry_mirror is None or _names_registry(reference):
            return reference
        repository = reference if "/" in reference.split(":")[0] else f"library/{reference}"
        return f"{self.registry_mirror}/{repository}"


def _names_registry(reference: str) -> bool:
    first = reference.split("/")[0]
    return "/" in reference and ("." in first or ":" in first or first == "localhost")


class LogRotation(Settings):
    """json-file log rotation applied to every container."""

    max_size: str = Field(default="10m", pattern=r"^\d+[kmg]$", description="Size of one log file, e.g. '10m'.")
    max_file: int = Field(default=3, ge=1, le=100, description="How many log files to keep.")


class ResourceOverride(Settings):
    """Limits for one container role that replace the profile's."""

    memory: MemoryMB | None = Field(default=None, description="Memory limit, e.g. '512M' or '1.5G'.")
    cpus: Cpus | None = Field(default=None, description="CPU limit in cores, e.g. 0.5.")
    reservation: MemoryMB | None = Field(default=None, description="Memory reservation, e.g. '256M'.")

    @model_validator(mode="after")
    def _reservation_fits_limit(self) -> ResourceOverride:
        if self.memory and self.reservation and self.reservation > self.memory:
            raise ValueError("reservation must not exceed memory")
        return self


class SynapseSettings(Settings):
    """The Matrix homeserver."""

    enabled: bool = Field(default=True, description="Deploy the homeserver.")
    server_name: DomainName = Field(description="The Matrix domain in user IDs (@alice:server_name).")
    public_host: DomainName | None = Field(
        default=None, description="Host name clients and servers reach Synapse at; default: server_name."
    )
    public_baseurl: HttpUrl | None = Field(
        default=None, description="URL clients use; default: https://public_host/ (http:// when TLS is off)."
    )
    registration: RegistrationMode = Field(
        description="'open' (anyone, no verification: the guide's setting), 'token' (registration tokens), 'closed'."
    )
    admin_username: Localpart | None = Field(
        default=None, description="Admin account created on first deploy; its password is secret config or generated."
    )
    http_bind: IpAddress = Field(default="127.0.0.1", description="Host address the client port is published on.")
    http_port: Port = Field(default=8008, description="Host port of Synapse's client/federation listener.")
    wellknown_port: Port = Field(default=8080, description="Host port of the .well-known server.")
    identity_server: HttpUrl | None = Field(default=None, description="Identity server advertised in well-known.")
    trusted_key_servers: list[DomainName] = Field(
        default=["matrix.org"], description="Servers trusted to vouch for other servers' keys."
    )
    max_upload_size: UploadSize = Field(description="Largest upload, e.g. '8M'; default from the profile.")
    presence: bool = Field(description="Online status; off on the small profile to save CPU.")
    metrics: bool = Field(description="Prometheus metrics listener on port 9000 inside the stack network.")
    log_level: LogLevel = Field(description="Synapse's log level; default from the environment.")
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


class StackSettings(Settings):
    """All settings of one stack, validated, with defaults resolved."""

    project: str
    stack: str
    environment: EnvironmentName = Field(description="dev, test, staging or prod; default: the stack name.")
    profile: ProfileName = Field(default="small", description="Sizing profile: 'small' (1 vCPU/2 GB) or 'medium'.")
    prefix: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$", description="Prefix of every Docker object name; default: project-stack."
    )
    tls: TlsMode = Field(
        description="How clients reach the services: 'off', 'self-signed', 'files' or 'acme'; default per environment."
    )
    monitoring: Monitoring = Field(description="'basic' or 'full' (metrics endpoints on).")
    protect_data: bool = Field(description="Protect data volumes from `pulumi destroy`; default on in staging/prod.")
    docker: DockerSettings = DockerSettings()
    images: ImageSettings = ImageSettings()
    logging: LogRotation = LogRotation()
    resources: dict[str, ResourceOverride] = Field(
        default_factory=dict, description="Per-container limits replacing the profile's, keyed by role."
    )
    synapse: SynapseSettings

    @model_validator(mode="after")
    def _resources_name_known_roles(self) -> StackSettings:
        known = sorted(PROFILES[self.profile].limits)
        for role in self.resources:
            if role not in known:
                raise ValueError(f"resources.{role} is not a container role; known roles: {', '.join(known)}")
        return self

    @model_validator(mode="after")
    def _prod_images_are_pinned(self) -> StackSettings:
        if self.environment == "prod":
            for name in ImageSettings.model_fields:
                if name == "registry_mirror":
                    continue
                tag = image_tag(getattr(self.images, name))
                if tag in (None, "latest"):
                    raise ValueError(f"images.{name} must be pinned to a version in prod, not 'latest'")
        return self

    def limits(self, role: str) -> ContainerLimits:
        """The profile's limits for a container role, with the stack's overrides applied."""
        base = PROFILES[self.profile].limits[role]
        override = self.resources.get(role, ResourceOverride())
        memory_mb = override.memory or base.memory_mb
        return ContainerLimits(
            memory_mb=memory_mb,
            cpus=override.cpus or base.cpus,
            reservation_mb=override.reservation or min(base.reservation_mb, memory_mb),
        )
