"""Per-environment defaults: the VoiceGrow guide's table (§2.2), extended to staging.

Any of these can be overridden in the stack file; this module only says what an
environment means when the stack file is silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EnvironmentName = Literal["dev", "test", "staging", "prod"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
RegistrationMode = Literal["open", "token", "closed"]
TlsMode = Literal["off", "self-signed", "files", "acme"]
Monitoring = Literal["basic", "full"]


@dataclass(frozen=True)
class EnvironmentDefaults:
    """What an environment turns on when the stack file does not say otherwise."""

    debug: bool
    log_level: LogLevel
    server_replicas: int
    tls: TlsMode
    backup_schedule: str | None
    monitoring: Monitoring
    metrics_retention: str
    log_retention: str
    registration: RegistrationMode
    protect_data: bool


ENVIRONMENTS: dict[str, EnvironmentDefaults] = {
    "dev": EnvironmentDefaults(
        debug=True,
        log_level="DEBUG",
        server_replicas=1,
        tls="off",
        backup_schedule=None,
        monitoring="basic",
        metrics_retention="3d",
        log_retention="72h",
        registration="closed",
        protect_data=False,
    ),
    "test": EnvironmentDefaults(
        debug=False,
        log_level="INFO",
        server_replicas=1,
        tls="self-signed",
        backup_schedule="0 2 * * *",
        monitoring="basic",
        metrics_retention="7d",
        log_retention="168h",
        registration="token",
        protect_data=False,
    ),
    "staging": EnvironmentDefaults(
        debug=False,
        log_level="WARNING",
        server_replicas=2,
        tls="acme",
        backup_schedule="0 2 * * *",
        monitoring="full",
        metrics_retention="15d",
        log_retention="168h",
        registration="token",
        protect_data=True,
    ),
    "prod": EnvironmentDefaults(
        debug=False,
        log_level="WARNING",
        server_replicas=2,
        tls="acme",
        backup_schedule="0 * * * *",
        monitoring="full",
        metrics_retention="30d",
        log_retention="720h",
        registration="token",
        protect_data=True,
    ),
}
