"""Settings of the monitoring stack: its level, retention, where alerts go and who may see it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from config.base import Settings
from config.environments import Monitoring
from config.types import DomainName

# Prometheus durations as its flags read them, e.g. '15s', '7d', '1y'.
DURATION = r"^[1-9][0-9]*(ms|s|m|h|d|w|y)$"
SIZE = r"^[1-9][0-9]*(MB|GB|TB)$"
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

Receiver = Literal["email", "wecom", "dingtalk", "webhook"]


def duration_seconds(duration: str) -> float:
    """Seconds of a Prometheus duration such as '15s' or '7d'."""
    match = re.match(r"^(\d+)(ms|s|m|h|d|w|y)$", duration)
    if not match:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


class EmailSettings(Settings):
    """Alerts by e-mail through an SMTP server; its password is the secret alert_smtp_password."""

    to: list[str] = Field(min_length=1, description="Addresses that get every alert.")
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="From: address of the alert mails.")
    smarthost: str = Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$", description="SMTP server as host:port, e.g. 'smtp.example.com:587'.")
    username: str | None = Field(default=None, description="SMTP login; default: none (the password is then unused).")
    require_tls: bool = Field(default=True, description="Refuse to send without STARTTLS.")

    @model_validator(mode="after")
    def _addresses(self) -> EmailSettings:
        for address in self.to:
            if not re.match(r"^[^@\s]+@[^@\s]+$", address):
                raise ValueError(f"to must hold e-mail addresses like 'ops@example.com', got {address!r}")
        return self


class WeComSettings(Settings):
    """Alerts to WeCom (企业微信) through Alertmanager's own receiver; the app secret is alert_wecom_secret."""

    corp_id: str = Field(pattern=r"^\S+$", description="The company's corp ID (企业ID).")
    agent_id: str = Field(pattern=r"^[0-9]+$", description="AgentId of the app that sends the messages.")
    to_party: str | None = Field(default=None, description="Department IDs, '|'-separated.")
    to_user: str | None = Field(default=None, description="User IDs, '|'-separated; '@all' for everyone.")
    api_url: str = Field(default="https://qyapi.weixin.qq.com/cgi-bin/", pattern=r"^https://\S+/$", description="WeCom API base URL.")

    @model_validator(mode="after")
    def _has_recipients(self) -> WeComSettings:
        if self.to_party is None and self.to_user is None:
            raise ValueError("to_party or to_user is required: whom the WeCom app messages")
        return self


FULL_ROLES = ("grafana", "loki", "alloy", "cadvisor", "engine_api")
"""The monitoring roles only `level: full` runs (basic: Prometheus, Alertmanager, the node and
blackbox exporters, and the DingTalk bridge when it is a receiver)."""


class MonitoringSettings(Settings):
    """Prometheus, Alertmanager and exporters (basic); Grafana, Loki and more exporters (full)."""

    level: Monitoring = Field(description="'basic' (metrics, probes, alerts) or 'full' (adds dashboards, logs, exporters).")
    scrape_interval: str = Field(default="15s", pattern=DURATION, description="How often Prometheus scrapes and evaluates rules.")
    retention: str = Field(pattern=DURATION, description="How long Prometheus keeps samples; default per environment.")
    retention_size: str = Field(pattern=SIZE, description="Most disk Prometheus uses, e.g. '2GB'; default per profile.")
    log_retention: str = Field(pattern=r"^[1-9][0-9]*h$", description="How long Loki keeps logs (full), in hours, e.g. '168h'.")
    receivers: list[Receiver] = Field(
        default_factory=list,
        description=(
            "Where alerts go: 'email', 'wecom', 'dingtalk', 'webhook' (each needs its settings or secrets). "
            "staging and prod refuse an empty list; dev and test deploy with a warning."
        ),
    )
    email: EmailSettings | None = Field(default=None, description="SMTP settings, for the 'email' receiver.")
    wecom: WeComSettings | None = Field(default=None, description="WeCom app, for the 'wecom' receiver.")
    grafana_host: DomainName | None = Field(default=None, description="Public host of Grafana behind the proxy (full); off when unset.")
    prometheus_host: DomainName | None = Field(default=None, description="Public host of Prometheus behind the proxy, with a login; off when unset.")
    alertmanager_host: DomainName | None = Field(default=None, description="Public host of Alertmanager behind the proxy, with a login; off when unset.")
    voicegrow_metrics: bool = Field(
        default=False, description="The VoiceGrow server serves /metrics (docs/monitoring.md: its metrics contract): scrape it and alert when it is down."
    )

    @model_validator(mode="before")
    @classmethod
    def _level_shorthand(cls, value: Any) -> Any:
        return {"level": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _receivers_have_settings(self) -> MonitoringSettings:
        for receiver in ("email", "wecom"):
            if receiver in self.receivers and getattr(self, receiver) is None:
                raise ValueError(f"{receiver} settings are required when receivers lists '{receiver}'")
        if len(set(self.receivers)) != len(self.receivers):
            raise ValueError("receivers must not repeat a receiver")
        if self.grafana_host is not None and self.level != "full":
            raise ValueError("grafana_host needs level 'full': Grafana runs only with full monitoring")
        if duration_seconds(self.scrape_interval) > 60:
            raise ValueError(f"scrape_interval must be at most 60s (alert windows start at 1m), got {self.scrape_interval!r}")
        return self

    @property
    def full(self) -> bool:
        return self.level == "full"

    @property
    def hosts(self) -> list[str]:
        """The public hosts the proxy routes to the monitoring stack."""
        return [host for host in (self.grafana_host, self.prometheus_host, self.alertmanager_host) if host]
