"""Reads the stack's Pulumi config, fills environment and profile defaults, and validates it.

This is the only module that reads `pulumi.Config`. Every problem is collected and reported
at once, each line naming the config key, before any resource is declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret
from pydantic import ValidationError

from config.merge import deep_merge
from config.environments import ENVIRONMENTS, EnvironmentDefaults
from config.models import StackSettings
from config.profiles import PROFILES
from config.secret_values import secret_value_problems
from config.secrets import SECRET_SETTINGS

SCALAR_SETTINGS = ("environment", "profile", "prefix", "tls", "protect_data", "orchestrator")
OBJECT_SETTINGS = (
    "docker", "swarm", "images", "logging", "resources", "security", "synapse", "voicegrow", "proxy", "backup", "monitoring", "healer", "firewall",
)
# Objects that may also be set to one word, which sets their first field (`monitoring: full`).
SHORTHAND_SETTINGS = {"monitoring": "level"}


class ConfigError(Exception):
    """Stack configuration that cannot be deployed; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid stack configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedConfig:
    """Validated settings plus the secret values the operator set (None where not set)."""

    settings: StackSettings
    secrets: dict[str, pulumi.Output[str] | None]


def load_config() -> LoadedConfig:
    """Validate the current stack's config; raise ConfigError naming every bad key."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    config = pulumi.Config()
    problems = _unknown_and_plaintext_keys(project)
    raw: dict[str, Any] = {}
    for key in SCALAR_SETTINGS:
        value = config.get(key)
        if value is not None:
            raw[key] = value
    for key in OBJECT_SETTINGS:
        try:
            value = config.get_object(key)
        except pulumi.ConfigTypeError:
            if key in SHORTHAND_SETTINGS:
                raw[key] = {SHORTHAND_SETTINGS[key]: config.get(key)}
                continue
            problems.append(f"{project}:{key} must be an object (set its fields with `pulumi config set --path`)")
            continue
        if value is not None:
            raw[key] = value
    settings = None
    try:
        settings = resolve_settings(project, stack, raw)
    except ConfigError as error:
        problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    # Read as plain text to be checked here; the program gets each only as a secret Output.
    values = {key: config.get(key) for key in SECRET_SETTINGS}
    problems = [f"{project}:{key} is required {reason}: set it with `pulumi config set --secret {key} ...`"
                for key, reason in _required_secrets(settings) if values[key] is None]
    problems += secret_value_problems(project, settings, values)
    if problems:
        raise ConfigError(problems)
    secrets = {key: None if value is None else pulumi.Output.secret(value) for key, value in values.items()}
    return LoadedConfig(settings=settings, secrets=secrets)


def _required_secrets(settings: StackSettings) -> list[tuple[str, str]]:
    """Secrets that some settings make mandatory, with the reason."""
    required = []
    if settings.proxy.enabled and settings.tls == "files":
        required += [(key, "when tls is 'files'") for key in ("tls_certificate", "tls_private_key")]
    if settings.backup.enabled and settings.backup.offsite.enabled:
        required.append(("backup_rclone_config", "when backup.offsite is enabled"))
    receivers = settings.monitoring.receivers
    email = settings.monitoring.email
    if "email" in receivers and email is not None and email.username is not None:
        required.append(("alert_smtp_password", "when monitoring.email.username is set"))
    for receiver, key in (("wecom", "alert_wecom_secret"), ("dingtalk", "alert_dingtalk_url"), ("webhook", "alert_webhook_url")):
        if receiver in receivers:
            required.append((key, f"when monitoring.receivers lists '{receiver}'"))
    return required


def resolve_settings(project: str, stack: str, raw: dict[str, Any]) -> StackSettings:
    """Merge the operator's values over the environment's and profile's defaults and validate."""
    environment = raw.get("environment", stack if stack in ENVIRONMENTS else None)
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            [
                f"{project}:environment must be one of {', '.join(ENVIRONMENTS)}, got {environment!r} "
                f"(set it with `pulumi config set environment dev` for stack '{stack}')"
            ]
        )
    profile_name = raw.get("profile", "small")
    if profile_name not in PROFILES:
        raise ConfigError([f"{project}:profile must be one of {', '.join(PROFILES)}, got {profile_name!r}"])
    monitoring = raw.get("monitoring")
    level = monitoring.get("level") if isinstance(monitoring, dict) else None
    defaults = {"environment": environment, **default_settings(project, stack, ENVIRONMENTS[environment], profile_name, level)}
    docker = raw.get("docker")
    docker_host = docker.get("host") if isinstance(docker, dict) else None
    # A remote host reached over SSH gets its firewall from the program by default.
    defaults["firewall"] = {"enabled": isinstance(docker_host, str) and docker_host.startswith("ssh://")}
    if raw.get("orchestrator") == "swarm":
        # Swarm replaces unhealthy tasks itself.
        defaults["healer"] = {"enabled": False}
    merged = deep_merge(defaults, raw)
    try:
        return StackSettings.model_validate(merged)
    except ValidationError as error:
        raise ConfigError([_describe(project, detail) for detail in error.errors()]) from None


def default_settings(
    project: str, stack: str, env: EnvironmentDefaults, profile_name: str, monitoring: str | None
) -> dict[str, Any]:
    """What the program fills in for a stack of this environment and profile before the operator's values."""
    profile = PROFILES[profile_name]
    return {
        "project": project,
        "stack": stack,
        "profile": profile_name,
        "prefix": f"{project}-{stack}",
        "tls": env.tls,
        "monitoring": {
            "level": env.monitoring,
            "retention": env.metrics_retention,
            "retention_size": profile.metrics_retention_size,
            "log_retention": env.log_retention,
        },
        "protect_data": env.protect_data,
        "synapse": {
            "registration": env.registration,
            "max_upload_size": profile.synapse.max_upload_size,
            "presence": profile.synapse.presence,
            "metrics": (monitoring or env.monitoring) == "full",
            "workers": profile.synapse_workers.default,
            # Synapse at DEBUG spends a fifth of a small host's CPU writing its log and delivers
            # messages that much slower (benchmarks/synapse_delivery.py); ask for it when needed.
            "log_level": "INFO" if env.log_level == "DEBUG" else env.log_level,
        },
        "voicegrow": {"replicas": env.server_replicas, "debug": env.debug, "log_level": env.log_level},
        "backup": {
            "enabled": env.backup_schedule is not None,
            "schedule": env.backup_schedule or "0 2 * * *",
            "part_schedules": dict(env.backup_part_schedules),
            "retention": {
                part: {"keep_days": keep_days, "keep_count": keep_count}
                for part, (keep_days, keep_count) in env.backup_retention.items()
            },
        },
    }


def _configured_keys(project: str) -> list[str]:
    prefix = f"{project}:"
    keys = set(get_config_env()) | set(CONFIG.get())
    return sorted(key[len(prefix) :] for key in keys if key.startswith(prefix))


def _unknown_and_plaintext_keys(project: str) -> list[str]:
    known = set(SCALAR_SETTINGS) | set(OBJECT_SETTINGS)
    problems = []
    for key in _configured_keys(project):
        if key in SECRET_SETTINGS:
            if not is_config_secret(f"{project}:{key}"):
                problems.append(
                    f"{project}:{key} is a secret: set it with `pulumi config set --secret {key} ...`"
                )
        elif key not in known:
            problems.append(
                f"{project}:{key} is not a known setting (check the spelling); known settings: "
                f"{', '.join(sorted(known | set(SECRET_SETTINGS)))}"
            )
    return problems


def _describe(project: str, detail: Any) -> str:
    location = ".".join(str(part) for part in detail["loc"])
    key = f"{project}:{location}" if location else project
    kind, message = detail["type"], detail["msg"]
    if kind == "missing":
        return f"{key} is required"
    if kind == "extra_forbidden":
        return f"{key} is not a known setting (check the spelling)"
    if kind == "value_error":
        text = message.removeprefix("Value error, ")
        if text.startswith("must"):
            return f"{key} {text}"
        # Model-level checks start their message with the sub-key they are about.
        return f"{key}.{text}" if location else f"{project}:{text}"
    return f"{key}: {message.lower()}, got {detail['input']!r}"
