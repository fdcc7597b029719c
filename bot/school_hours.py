"""When the school is open, so reminders never arrive at night, at the weekend
or in the holidays.

``[school_hours]`` in guidebot.toml sets it for every school; a school with
other hours or holidays has its own ``[schools.SLUG.school_hours]``, whose keys
replace the global ones one by one (so a school that lists ``holidays`` lists
all of its own)::

    [school_hours]
    timezone = "Europe/London"
    days = ["mon", "tue", "wed", "thu", "fri"]
    opens = "08:00"
    closes = "17:00"
    holidays = [
      { start = 2026-10-26, end = 2026-10-30, name = "Autumn half term" },
      { start = 2026-12-21, end = 2027-01-01, name = "Christmas" },
      2027-05-03,  # a single day: a bank holiday or an INSET day
    ]

All times are wall-clock times in ``timezone`` (``zoneinfo``), so "08:00" is
08:00 in London in both GMT and BST: a reminder due on the Monday after the
clocks change still goes at eight by the staffroom clock. Holidays are whole
days, inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CLOSED_DAYS = 800
"""A calendar with no open day in this many days is a mistake in the settings."""
KEYS = frozenset({"timezone", "days", "opens", "closes", "holidays"})


@dataclass(frozen=True)
class Holiday:
    first: date
    last: date
    name: str = ""

    def covers(self, day: date) -> bool:
        return self.first <= day <= self.last


@dataclass(frozen=True)
class SchoolHours:
    """A school's open hours in its own timezone (see the module notes)."""

    timezone: str = "Europe/London"
    days: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))
    """Open weekdays, Monday = 0."""
    opens: time = time(8, 0)
    closes: time = time(17, 0)
    holidays: tuple[Holiday, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        """``moment`` on the school's clock (a naive moment is taken as UTC)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def today(self, moment: datetime) -> date:
        """The school's calendar date at ``moment``."""
        return self.local(moment).date()

    def holiday(self, day: date) -> Holiday | None:
        return next((h for h in self.holidays if h.covers(day)), None)

    def is_school_day(self, day: date) -> bool:
        return day.weekday() in self.days and self.holiday(day) is None

    def is_open(self, moment: datetime) -> bool:
        local = self.local(moment)
        return self.is_school_day(local.date()) and self.opens <= local.time() < self.closes

    def opening(self, day: date) -> datetime:
        """The moment the school opens on ``day`` (aware, on the school's clock).
        Built through UTC so an opening time inside a clock change still exists."""
        naive = datetime.combine(day, self.opens)
        return naive.replace(tzinfo=self.zone).astimezone(UTC).astimezone(self.zone)

    def next_open(self, moment: datetime) -> datetime:
        """``moment`` itself if the school is open then, else the next opening."""
        local = self.local(moment)
        if self.is_open(local):
            return local
        day = local.date()
        if self.is_school_day(day) and local.time() < self.opens:
            return self.opening(day)
        for _ in range(MAX_CLOSED_DAYS):
            day += timedelta(days=1)
            if self.is_school_day(day):
                return self.opening(day)
        from bot.config import ConfigError

        raise ConfigError(
            f"school_hours: the school is never open in the {MAX_CLOSED_DAYS} days after {day}: "
            "check days and holidays"
        )


def _time(value: Any, key: str, where: str) -> time:
    from bot.config import ConfigError

    if isinstance(value, time):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            hours, minutes = value.strip().split(":")
            return time(int(hours), int(minutes))
        except ValueError:
            pass
    raise ConfigError(f'{where}{key} must be a time of day like "08:00", not {value!r}')


def _date(value: Any, where: str) -> date:
    from bot.config import ConfigError

    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where} must be a date like 2026-10-26, not {value!r}")


def _holiday(value: Any, where: str) -> Holiday:
    from bot.config import ConfigError

    if not isinstance(value, Mapping):
        day = _date(value, where)
        return Holiday(day, day)
    unknown = sorted(set(value) - {"start", "end", "name"})
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]} is not known (use start, end and name)")
    if "start" not in value:
        raise ConfigError(f"{where}.start is missing")
    first = _date(value["start"], f"{where}.start")
    last = _date(value.get("end", value["start"]), f"{where}.end")
    name = value.get("name", "")
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name must be text")
    if last < first:
        raise ConfigError(f"{where}.end ({last}) is before its start ({first})")
    return Holiday(first, last, name.strip())


def parse_school_hours(
    raw: Mapping[str, Any] | None, where: str = "school_hours.", base: SchoolHours | None = None
) -> SchoolHours:
    """A ``[school_hours]`` table; keys it leaves out come from ``base`` (the
    global hours, for a school's own table) or the defaults."""
    from bot.config import ConfigError

    hours = base or SchoolHours()
    if raw is None:
        return hours
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where[:-1]} must be a table, like [{where[:-1]}]")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConfigError(
            f"{where}{unknown[0]} is not a setting guidebot knows "
            f"(expected one of: {', '.join(sorted(KEYS))})"
        )
    if "timezone" in raw:
        zone = raw["timezone"]
        try:
            if not isinstance(zone, str) or not zone.strip():
                raise ValueError
            ZoneInfo(zone.strip())
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError(
                f'{where}timezone must be a timezone name like "Europe/London", not {zone!r}'
            ) from None
        hours = replace(hours, timezone=zone.strip())
    if "days" in raw:
        days = raw["days"]
        if not isinstance(days, list) or not days:
            raise ConfigError(f'{where}days must be a list like ["mon", "tue", "wed"]')
        numbers: set[int] = set()
        for day in days:
            name = day.strip().casefold()[:3] if isinstance(day, str) else ""
            if name not in DAY_NAMES:
                raise ConfigError(f"{where}days: {day!r} is not a day (use mon, tue ... sun)")
            numbers.add(DAY_NAMES.index(name))
        hours = replace(hours, days=frozenset(numbers))
    if "opens" in raw:
        hours = replace(hours, opens=_time(raw["opens"], "opens", where))
    if "closes" in raw:
        hours = replace(hours, closes=_time(raw["closes"], "closes", where))
    if hours.closes <= hours.opens:
        raise ConfigError(f"{where}closes must be later than opens")
    if "holidays" in raw:
        holidays = raw["holidays"]
        if not isinstance(holidays, list):
            raise ConfigError(f"{where}holidays must be a list of dates or {{start, end}} tables")
        hours = replace(
            hours,
            holidays=tuple(
                _holiday(h, f"{where}holidays[{n}]") for n, h in enumerate(holidays, start=1)
            ),
        )
    return hours
