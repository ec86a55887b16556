"""The backup image's cron matcher: what fires when, in UTC or a local time zone, and what it refuses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from components.images.backup.cron import CronSchedule

pytestmark = pytest.mark.rendered


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 2 * * *", "2025-03-14 10:17", "2025-03-15 02:00"),
        ("0 2 * * *", "2025-03-14 01:59", "2025-03-14 02:00"),
        ("0 2 * * *", "2025-03-14 02:00", "2025-03-15 02:00"),  # strictly after
        ("0 * * * *", "2025-12-31 23:30", "2026-01-01 00:00"),
        ("*/15 * * * *", "2025-03-14 10:17", "2025-03-14 10:30"),
        ("5,35 8-10 * * *", "2025-03-14 10:40", "2025-03-15 08:05"),
        ("0 0 29 2 *", "2025-03-01 00:00", "2028-02-29 00:00"),
        ("0 0 31 * *", "2025-04-01 00:00", "2025-05-31 00:00"),
        ("30 4 * * 1-5", "2025-03-14 05:00", "2025-03-17 04:30"),  # Friday -> Monday
        ("0 0 * * 7", "2025-03-14 00:00", "2025-03-16 00:00"),  # 7 is Sunday
        ("0 0 * * 0", "2025-03-14 00:00", "2025-03-16 00:00"),  # and so is 0
        ("0 12 1 * 1", "2025-03-14 00:00", "2025-03-17 12:00"),  # day OR weekday: Monday first
        ("0 12 15 * 1", "2025-03-14 00:00", "2025-03-15 12:00"),  # day OR weekday: the 15th first
        ("0 12 */10 * 1", "2025-03-14 00:00", "2025-03-31 12:00"),  # "*/10" counts as unrestricted: AND
        ("10/20 * * * *", "2025-03-14 10:00", "2025-03-14 10:10"),
        ("0 3 * 2 *", "2025-03-14 00:00", "2026-02-01 03:00"),
    ],
)
def test_next_run(expression: str, after: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(at(after)) == at(expected)


@pytest.mark.parametrize("expression", ["0 2 * * *", "*/7 */5 * * *", "0 12 1,15 * 1", "0 12 */10 * 1", "59 23 28-31 * *", "0 0 * 2 0,6"])
def test_next_run_is_the_first_matching_minute(expression: str) -> None:
    schedule = CronSchedule.parse(expression)
    moment = at("2025-02-20 00:00")
    for _ in range(30):
        expected = moment + timedelta(minutes=1)
        while not schedule.matches(expected):
            expected += timedelta(minutes=1)
        assert schedule.next_after(moment) == expected
        moment = expected


def test_next_run_accepts_other_time_zones_and_answers_in_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert CronSchedule.parse("0 2 * * *").next_after(datetime(2025, 3, 14, 9, 0, tzinfo=shanghai)) == at("2025-03-14 02:00")


def test_a_schedule_in_shanghai_fires_at_its_local_time() -> None:
    assert CronSchedule.parse("0 2 * * *", "Asia/Shanghai").next_after(at("2025-03-14 10:17")) == at("2025-03-14 18:00")


def test_day_fields_are_read_on_the_local_calendar() -> None:
    # Sunday 03:00 in Shanghai is Saturday 19:00 UTC.
    assert CronSchedule.parse("0 3 * * 0", "Asia/Shanghai").next_after(at("2025-03-14 00:00")) == at("2025-03-15 19:00")


def test_a_wall_time_skipped_by_the_clock_going_forward_does_not_fire_that_day() -> None:
    # Berlin, 30 March 2025: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    assert CronSchedule.parse("30 2 * * *", "Europe/Berlin").next_after(at("2025-03-29 12:00")) == at("2025-03-31 00:30")


def test_a_wall_time_repeated_by_the_clock_going_back_fires_once() -> None:
    # Berlin, 26 October 2025: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    schedule = CronSchedule.parse("30 2 * * *", "Europe/Berlin")
    first = schedule.next_after(at("2025-10-25 12:00"))
    assert first == at("2025-10-26 00:30")
    assert schedule.next_after(first) == at("2025-10-27 01:30")
    assert schedule.next_after(at("2025-10-26 01:15")) == at("2025-10-27 01:30")  # from inside the second pass


def test_an_unknown_time_zone_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="'Asia/Beijing' is not an IANA time zone name like 'Asia/Shanghai'"):
        CronSchedule.parse("0 2 * * *", "Asia/Beijing")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CronSchedule.parse("0 2 * * *").next_after(datetime(2025, 3, 14))


@pytest.mark.parametrize(
    ("expression", "gap"),
    [
        ("0 2 * * *", timedelta(days=1)),
        ("0 * * * *", timedelta(hours=1)),
        ("*/5 * * * *", timedelta(minutes=5)),
        ("0 2,3 * * *", timedelta(hours=23)),
        ("0 * * * 1-5", timedelta(hours=49)),
        ("0 3 * * 0", timedelta(days=7)),
        ("0 0 1 * *", timedelta(days=31)),
    ],
)
def test_longest_gap_between_runs(expression: str, gap: timedelta) -> None:
    assert CronSchedule.parse(expression).longest_gap(at("2025-03-14 10:17")) == gap


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 2 * *", "needs 5 fields"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day of month 0 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day of week 8 is out of range 0-7"),
        ("5-2 * * * *", "runs backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("0 0 * * MON", "is not a number"),
        ("0 0 30 2 *", "never matches"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronSchedule.parse(expression)
