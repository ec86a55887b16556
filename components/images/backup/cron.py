"""Five-field cron schedules in a time zone: parse, match, next run, and the longest wait between runs.

Standard cron semantics: `minute hour day-of-month month day-of-week`, each field `*`, `N`,
`N-M`, with an optional `/STEP`, in comma lists; day of week 0-7 with 0 and 7 both Sunday.
When both day fields are restricted (neither starts with `*`), a day matches if either does.

The fields are read on the wall clock of the schedule's time zone (an IANA name, default UTC);
the moments taken and returned are timezone-aware and answered in UTC. Where the clock jumps
forward, a wall time that does not exist that day is skipped; where it falls back, a repeated
wall time fires once, at its first occurrence.

This module has no imports beyond the standard library: it runs inside the backup image and
is imported by the program to validate `backup.schedule` before anything is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# (name, lowest, highest) of each field, in order.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))

# Long enough to meet a 29 February from any date (there is none between 2096 and 2104).
SEARCH_LIMIT = timedelta(days=366 * 8 + 1)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression read in `zone`; the moments it returns are UTC datetimes."""

    expression: str
    zone: ZoneInfo
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str, zone: str = "UTC") -> CronSchedule:
        """Parse an expression for the IANA time zone `zone`; ValueError says what is wrong and why."""
        fields = expression.split()
        if len(fields) != len(FIELDS):
            raise ValueError(f"needs 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
        values = [_field_values(text, name, low, high) for text, (name, low, high) in zip(fields, FIELDS)]
        schedule = cls(
            expression=" ".join(fields),
            zone=time_zone(zone),
            minutes=tuple(sorted(values[0])),
            hours=tuple(sorted(values[1])),
            days=frozenset(values[2]),
            months=frozenset(values[3]),
            weekdays=frozenset(day % 7 for day in values[4]),
            days_restricted=not fields[2].startswith("*"),
            weekdays_restricted=not fields[4].startswith("*"),
        )
        schedule.next_after(datetime(2000, 1, 1, tzinfo=timezone.utc))  # raises when it never matches
        return schedule

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires in this minute (a wall-clock time in the schedule's zone)."""
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self._day_matches(moment)
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first minute strictly after `moment` in which the schedule fires, in UTC."""
        after = _utc(moment)
        wall = after.astimezone(self.zone).replace(tzinfo=None)
        while True:
            wall = self._next_wall_time(wall)
            fires = wall.replace(tzinfo=self.zone).astimezone(timezone.utc)
            # A wall time in a forward jump does not exist; one repeated by a fall back fires once,
            # and from a moment in its second pass the first has already gone.
            if fires.astimezone(self.zone).replace(tzinfo=None) == wall and fires > after:
                return fires

    def _next_wall_time(self, wall: datetime) -> datetime:
        """The first wall-clock minute strictly after `wall` (naive) that the fields match."""
        start = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = start + SEARCH_LIMIT
        current = start
        while current <= limit:
            if current.month not in self.months:
                current = _first_of_next_month(current)
            elif not self._day_matches(current):
                current = current.replace(hour=0, minute=0) + timedelta(days=1)
            elif current.hour not in self.hours:
                later = [hour for hour in self.hours if hour > current.hour]
                if later:
                    current = current.replace(hour=later[0], minute=0)
                else:
                    current = current.replace(hour=0, minute=0) + timedelta(days=1)
            elif current.minute not in self.minutes:
                later = [minute for minute in self.minutes if minute > current.minute]
                if later:
                    current = current.replace(minute=later[0])
                else:
                    current = current.replace(minute=0) + timedelta(hours=1)
            else:
                return current
        raise ValueError(f"'{self.expression}' never matches a date")

    def longest_gap(self, start: datetime, runs: int = 2000, horizon: timedelta = timedelta(days=400)) -> timedelta:
        """The longest wait between two consecutive runs, looking ahead from `start`.

        It looks at up to `runs` runs, stopping early once `horizon` is covered, so both a
        per-minute schedule and a yearly one are measured in a few milliseconds.
        """
        previous = self.next_after(start)
        end = previous + horizon
        longest = timedelta(0)
        for _ in range(runs):
            following = self.next_after(previous)
            longest = max(longest, following - previous)
            previous = following
            if previous > end:
                break
        return longest

    def runs_per_day(self, start: datetime, runs: int = 10000, horizon: timedelta = timedelta(days=364)) -> float:
        """How many times a day the schedule fires on average, counted from `start`.

        It counts over `horizon` (52 weeks: every weekday and month as often as a year has them),
        or over the first `runs` runs when they come sooner, so a per-minute schedule is counted
        in milliseconds too.
        """
        begin = _utc(start)
        end = begin + horizon
        count, last, moment = 0, begin, self.next_after(begin)
        while moment <= end and count < runs:
            count, last = count + 1, moment
            moment = self.next_after(moment)
        span = last - begin if count == runs else horizon
        return count / (span / timedelta(days=1))

    def _day_matches(self, moment: datetime) -> bool:
        day = moment.day in self.days
        weekday = moment.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day or weekday
        return day and weekday


def _field_values(text: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, name, part) if step_text else 1
        if step < 1:
            raise ValueError(f"{name} step must be at least 1 in '{part}'")
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first_text, _, last_text = span.partition("-")
            first, last = _number(first_text, name, part), _number(last_text, name, part)
        else:
            first = _number(span, name, part)
            last = high if step_text else first
        for value in (first, last):
            if not low <= value <= high:
                raise ValueError(f"{name} {value} is out of range {low}-{high} in '{part}'")
        if first > last:
            raise ValueError(f"{name} range '{span}' runs backwards")
        values.update(range(first, last + 1, step))
    return values


def _number(text: str, name: str, part: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{name} '{part}' is not a number, range or */step")
    return int(text)


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (like 'Asia/Shanghai'); ValueError when there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not an IANA time zone name like 'Asia/Shanghai' or 'UTC'") from None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("cron works on timezone-aware datetimes")
    return moment.astimezone(timezone.utc)


def _first_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0)
