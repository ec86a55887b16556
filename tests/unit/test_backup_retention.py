"""Backups sized by design: each part's schedule and retention per environment, and what retention holds."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from components.images.backup.archives import PartPlan, Retention, copies_kept, project_retention
from components.images.backup.cron import CronSchedule
from config import ConfigError, resolve_settings
from config.models import BACKUP_PARTS, BackupSettings
from tests.stack_config import ALERT_RECEIVERS

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)
GB = 10**9
# The closing figure's stack: a 1 GB database, 1 GB MySQL, a 10 GB media store and a 10 GB bucket.
SIZES = {"synapse": 1 * GB, "mysql": 1 * GB, "media": 10 * GB, "bucket": 10 * GB}


def _backup(stack: str = "prod", **backup: Any) -> BackupSettings:
    raw = {"synapse": {"server_name": "example.com", "admin_username": "admin"}, "proxy": {"acme_email": "ops@example.com"},
           "monitoring": ALERT_RECEIVERS, "backup": backup}
    return resolve_settings("selfhosted", stack, raw).backup


def _problems(**backup: Any) -> str:
    with pytest.raises(ConfigError) as error:
        _backup(**backup)
    return str(error.value)


def _plan(expression: str, keep_days: int, keep_count: int) -> PartPlan:
    return PartPlan(expression, CronSchedule.parse(expression).runs_per_day(AT), Retention(keep_days, keep_count))


# --- settings ------------------------------------------------------------------------------------


def test_prod_backs_the_databases_up_hourly_and_media_and_the_bucket_daily() -> None:
    backup = _backup("prod")
    assert backup.schedule == "0 * * * *"
    assert backup.part_schedules.model_dump() == {"synapse": None, "mysql": None, "media": "30 3 * * *", "bucket": "30 3 * * *"}


def test_prod_keeps_two_days_of_hourly_databases_and_a_week_of_daily_media_and_objects() -> None:
    retention = _backup("prod").retention.model_dump()
    assert retention == {
        "synapse": {"keep_days": 2, "keep_count": 48},
        "mysql": {"keep_days": 2, "keep_count": 48},
        "media": {"keep_days": 7, "keep_count": 7},
        "bucket": {"keep_days": 7, "keep_count": 7},
    }


@pytest.mark.parametrize("stack", ["test", "staging"])
def test_outside_prod_the_databases_are_daily_for_a_week_and_media_and_the_bucket_weekly_two_copies(stack: str) -> None:
    backup = _backup(stack)
    assert backup.schedule == "0 2 * * *"
    assert (backup.part_schedules.media, backup.part_schedules.bucket) == ("0 3 * * 0", "0 3 * * 0")
    assert backup.retention.synapse.model_dump() == {"keep_days": 7, "keep_count": 7}
    assert backup.retention.media.model_dump() == {"keep_days": 14, "keep_count": 2}


def test_one_parts_retention_can_be_set_and_the_others_keep_their_defaults() -> None:
    retention = _backup("prod", retention={"media": {"keep_count": 3}}).retention
    assert (retention.media.keep_days, retention.media.keep_count, retention.synapse.keep_count) == (7, 3, 48)


def test_a_part_can_follow_the_main_schedule_again() -> None:
    assert _backup("prod", part_schedules={"media": None}).part_schedules.media is None


@pytest.mark.parametrize(
    ("backup", "message"),
    [
        pytest.param({"retention": {"media": {"keep_count": 0}}}, "selfhosted:backup.retention.media.keep_count", id="count"),
        pytest.param({"retention": {"bucket": {"keep_days": 0}}}, "selfhosted:backup.retention.bucket.keep_days", id="days"),
        pytest.param({"retention": {"mysql": {"keep_days": "a week"}}}, "selfhosted:backup.retention.mysql.keep_days", id="type"),
        pytest.param({"retention": {"minio": {"keep_count": 2}}}, "selfhosted:backup.retention.minio is not a known setting", id="part"),
        pytest.param({"part_schedules": {"media": "0 0 31 2 *"}}, "selfhosted:backup.part_schedules.media", id="schedule"),
    ],
)
def test_a_bad_retention_or_schedule_is_refused_naming_its_key(backup: dict[str, Any], message: str) -> None:
    assert message in _problems(**backup)


@pytest.mark.parametrize("key", ["keep_days", "keep_count"])
def test_the_old_archive_wide_retention_fails_naming_its_replacement(key: str) -> None:
    problems = _problems(**{key: 5})
    assert f"selfhosted:backup.{key} was renamed to backup.retention.<part>.{key}" in problems
    assert f"retention: {{synapse: {{{key}: 5}}, mysql: ...}}" in problems


def test_every_part_has_a_schedule_and_a_retention_setting() -> None:
    backup = _backup("prod")
    assert set(backup.part_schedules.model_dump()) == set(backup.retention.model_dump()) == set(BACKUP_PARTS)


# --- the projection ------------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "per_day"), [("0 * * * *", 24), ("30 3 * * *", 1), ("0 3 * * 0", 1 / 7), ("* * * * *", 1440)])
def test_runs_per_day_are_counted_from_the_schedule(expression: str, per_day: float) -> None:
    assert CronSchedule.parse(expression).runs_per_day(AT) == pytest.approx(per_day)


@pytest.mark.parametrize(
    ("plan", "copies"),
    [
        pytest.param(_plan("0 * * * *", 7, 168), 168, id="hourly-week"),
        pytest.param(_plan("0 * * * *", 2, 168), 48, id="hourly-two-days"),
        pytest.param(_plan("0 * * * *", 7, 10), 10, id="count-caps"),
        pytest.param(_plan("30 3 * * *", 7, 7), 7, id="daily-week"),
        pytest.param(_plan("0 3 * * 0", 14, 2), 2, id="weekly-two"),
        pytest.param(_plan("0 3 * * 0", 30, 100), 5, id="weekly-thirty-days"),
        pytest.param(_plan("0 3 * * 0", 1, 7), 1, id="newest-always"),
    ],
)
def test_copies_kept_are_the_runs_within_keep_days_at_most_keep_count(plan: PartPlan, copies: int) -> None:
    assert copies_kept(plan) == copies


def test_the_projection_is_each_parts_copies_times_its_size_plus_the_largest_run() -> None:
    plans = {"synapse": _plan("0 * * * *", 2, 48), "media": _plan("30 3 * * *", 7, 7)}
    projection = project_retention(plans, {"synapse": 1 * GB, "media": 10 * GB})
    assert projection.copies == {"synapse": 48, "media": 7}
    assert projection.part_bytes == {"synapse": 48 * GB, "media": 70 * GB}
    assert projection.total_bytes == 48 * GB + 70 * GB + 10 * GB


def test_parts_taken_in_the_same_runs_keep_as_many_copies_as_the_most_any_of_them_keeps() -> None:
    plans = {"synapse": _plan("0 * * * *", 2, 48), "media": _plan("0 * * * *", 7, 7)}
    projection = project_retention(plans, {"synapse": 1 * GB, "media": 10 * GB})
    assert projection.copies == {"synapse": 48, "media": 48}
    assert projection.run_bytes == 11 * GB


def _prod_projection(backup: BackupSettings) -> int:
    return project_retention(backup.part_plans(list(BACKUP_PARTS), AT), SIZES).total_bytes


def test_prods_archives_at_retention_shrink_from_terabytes_to_a_quarter_of_a_terabyte() -> None:
    # Before: every part in every hourly archive, 168 archives kept for 7 days.
    before = _backup("prod", part_schedules={"media": None, "bucket": None},
                     retention={part: {"keep_days": 7, "keep_count": 168} for part in BACKUP_PARTS})
    after = _backup("prod")
    print(f"prod at retention: before {project_retention(before.part_plans(list(BACKUP_PARTS), AT), SIZES).described()}")
    print(f"prod at retention: after {project_retention(after.part_plans(list(BACKUP_PARTS), AT), SIZES).described()}")
    assert _prod_projection(before) == 168 * 22 * GB + 22 * GB
    assert _prod_projection(after) == 48 * GB + 48 * GB + 70 * GB + 70 * GB + 20 * GB
