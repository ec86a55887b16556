"""Per-environment defaults: the VoiceGrow guide's table (§2.2), extended to staging.

Any of these can be overridden in the stack file; this module only says what an
environment means when the stack file is silent.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    backup_part_schedules: Mapping[str, str]
    """Parts backed up on a schedule of their own instead of `backup_schedule`."""
    backup_retention: Mapping[str, tuple[int, int]]
    """Each part's (keep_days, keep_count)."""
    monitoring: Monitoring
    metrics_retention: str
    log_retention: str
    registration: RegistrationMode
    protect_data: bool


# Outside prod the databases are copied daily and kept a week. The media store and the bucket
# change by additions only and are the bulk of the data: weekly, two copies (if the newest turns
# out bad, the one before), on Sunday an hour after the daily run so that a run takes one or the other.
DAILY_BACKUPS = {"synapse": (7, 7), "mysql": (7, 7), "media": (14, 2), "bucket": (14, 2)}
WEEKLY_BULK = {"media": "0 3 * * 0", "bucket": "0 3 * * 0"}

# prod: the databases hourly for two days (a mistake noticed the next day is undone to the hour);
# media and objects daily for a week, at 03:30, apart from the hourly runs, so that every archive is
# kept by its own parts' retention only. Longer history is the offsite copy's (backup.offsite).
# With a 1 GB database, 1 GB MySQL, 10 GB media and a 10 GB bucket: 256 GB at retention, instead
# of 3,718 GB for a week of hourly archives holding everything (docs/backups.md).
HOURLY_BACKUPS = {"synapse": (2, 48), "mysql": (2, 48), "media": (7, 7), "bucket": (7, 7)}
DAILY_BULK = {"media": "30 3 * * *", "bucket": "30 3 * * *"}

ENVIRONMENTS: dict[str, EnvironmentDefaults] = {
    "dev": EnvironmentDefaults(
        debug=True,
        log_level="DEBUG",
        server_replicas=1,
        tls="off",
        backup_schedule=None,
        backup_part_schedules=WEEKLY_BULK,
        backup_retention=DAILY_BACKUPS,
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
        backup_part_schedules=WEEKLY_BULK,
        backup_retention=DAILY_BACKUPS,
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
        backup_part_schedules=WEEKLY_BULK,
        backup_retention=DAILY_BACKUPS,
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
        backup_part_schedules=DAILY_BULK,
        backup_retention=HOURLY_BACKUPS,
        monitoring="full",
        metrics_retention="30d",
        log_retention="720h",
        registration="token",
        protect_data=True,
    ),
}
