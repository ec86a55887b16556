"""The runbook: every alert explained, the stack named first, a translation's commands the same."""

from __future__ import annotations

from components.rendering import monitoring as render
from config.monitoring import MonitoringSettings
from tests.runbook import ENGLISH, STACK_LINE, command_blocks, present_runbooks, runbook

# Everything monitored, so that every alert of the catalogue exists.
PLAN = render.build_plan(
    "prod",
    "selfhosted-prod",
    MonitoringSettings(level="full", retention="30d", retention_size="16GB", log_retention="720h", voicegrow_metrics=True),
    render.Deployed(
        synapse=True, synapse_metrics=True, synapse_memory_limit_mb=1280, voicegrow_replicas=2, backup=True, healer=True, proxy=True,
        public=[render.PublicEndpoint("matrix.example.com", "synapse", "/_matrix/client/versions")],
        public_tls=True, verify_public_tls=True,
    ),
)


def test_the_runbook_explains_every_alert() -> None:
    names = {alert.name for alerts in render.alert_catalogue(PLAN).values() for alert in alerts}
    missing = sorted(name for name in names if f"`{name}`" not in runbook(ENGLISH))
    assert missing == []


def test_the_runbook_starts_by_naming_the_stack() -> None:
    assert STACK_LINE.match(command_blocks(ENGLISH)[0])


def test_the_runbook_has_a_block_for_each_everyday_task() -> None:
    commands = "\n".join(command_blocks(ENGLISH))
    for command in ("scripts/status.sh", "docker logs", "register_new_matrix_user", "/_synapse/admin/v2/users/",
                    "pulumi config set --secret", "backup-now", "scripts/restore.sh"):
        assert command in commands


def test_a_translated_runbook_runs_the_same_commands() -> None:
    translations = [path for path in present_runbooks() if path != ENGLISH]
    assert translations, "the translated runbook (docs/zh-CN/runbook.md) has no runbook markers"
    for path in translations:
        assert command_blocks(path) == command_blocks(ENGLISH), f"{path}'s runbook commands differ from docs/runbook.md's"
