"""School hours on the school's own clock: open days, holidays, the clock changes
and the settings that describe them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, parse
from bot.school_hours import Holiday, SchoolHours, parse_school_hours

LONDON = ZoneInfo("Europe/London")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


def test_open_on_weekdays_between_eight_and_five_london_time() -> None:
    hours = SchoolHours()
    assert hours.is_open(at(2026, 11, 23, 8, 0))  # a Monday
    assert hours.is_open(at(2026, 11, 23, 16, 59))
    assert not hours.is_open(at(2026, 11, 23, 17, 0))
    assert not hours.is_open(at(2026, 11, 23, 7, 59))
    assert not hours.is_open(at(2026, 11, 22, 12, 0))  # Sunday
    assert not hours.is_open(at(2026, 11, 28, 12, 0))  # Saturday


def test_summer_time_is_read_on_the_london_clock() -> None:
    hours = SchoolHours()
    # 07:30 UTC in July is 08:30 in London: open. 16:30 UTC is 17:30: closed.
    assert hours.is_open(datetime(2027, 7, 5, 7, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2027, 7, 5, 16, 30, tzinfo=UTC))
    # In winter London is on UTC.
    assert not hours.is_open(datetime(2027, 1, 4, 7, 30, tzinfo=UTC))
    assert hours.is_open(datetime(2027, 1, 4, 16, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("moment", "expected_utc"),
    [
        # Friday evening before the spring change (GMT) -> Monday 08:00 BST = 07:00 UTC.
        (at(2027, 3, 26, 18, 0), datetime(2027, 3, 29, 7, 0, tzinfo=UTC)),
        # Saturday in the night of the autumn change (BST) -> Monday 08:00 GMT = 08:00 UTC.
        (at(2026, 10, 24, 23, 0), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
        # Sunday 01:30 of the autumn change happens twice; either way -> Monday 08:00 GMT.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
        # Early on a school day -> 08:00 that day.
        (at(2027, 3, 30, 6, 15), datetime(2027, 3, 30, 7, 0, tzinfo=UTC)),
    ],
)
def test_next_open_lands_on_eight_oclock_local_across_the_changes(
    moment: datetime, expected_utc: datetime
) -> None:
    found = SchoolHours().next_open(moment)
    assert found == expected_utc
    assert found.astimezone(LONDON).time() == time(8, 0)


def test_next_open_of_an_open_moment_is_that_moment() -> None:
    moment = at(2027, 3, 30, 10, 20)
    assert SchoolHours().next_open(moment) == moment


def test_holidays_are_closed_whole_days_inclusive() -> None:
    hours = SchoolHours(holidays=(Holiday(date(2026, 10, 26), date(2026, 10, 30), "Half term"),))
    for day in range(26, 31):
        assert not hours.is_open(at(2026, 10, day, 10, 0))
    assert hours.is_open(at(2026, 11, 2, 10, 0))
    assert hours.next_open(at(2026, 10, 23, 17, 30)) == at(2026, 11, 2, 8, 0)
    assert hours.holiday(date(2026, 10, 28)) == hours.holidays[0]


def test_an_opening_time_inside_the_spring_gap_still_exists() -> None:
    hours = SchoolHours(opens=time(1, 30), closes=time(3, 0), days=frozenset(range(7)))
    opening = hours.opening(date(2027, 3, 28))  # 01:30 does not exist that morning
    assert opening.utcoffset() is not None
    assert hours.is_open(opening)


def test_parsed_from_the_settings_with_a_school_override() -> None:
    settings = parse(
        {
            "school_hours": {
                "opens": "08:30",
                "closes": "16:00",
                "holidays": [
                    {"start": date(2026, 12, 21), "end": date(2027, 1, 1), "name": "Christmas"},
                    "2027-05-03",
                ],
            },
            "schools": {
                "st-annes": {"school_hours": {"days": ["mon", "tue", "wed", "thu"]}},
            },
        },
        {},
    )
    schedule = settings.schedule
    general = schedule.hours_for("crossflatts")
    assert (general.opens, general.closes) == (time(8, 30), time(16, 0))
    assert general.holidays == (
        Holiday(date(2026, 12, 21), date(2027, 1, 1), "Christmas"),
        Holiday(date(2027, 5, 3), date(2027, 5, 3)),
    )
    annes = schedule.hours_for("st-annes")
    assert annes.days == frozenset({0, 1, 2, 3})
    assert annes.opens == time(8, 30)  # the rest comes from [school_hours]
    assert annes.holidays == general.holidays
    assert not annes.is_open(at(2026, 11, 27, 10, 0))  # a Friday
    assert general.is_open(at(2026, 11, 27, 10, 0))


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"timezone": "Europe/Atlantis"}, "school_hours.timezone"),
        ({"days": ["monday", "funday"]}, "school_hours.days"),
        ({"opens": "8am"}, "school_hours.opens"),
        ({"opens": "17:00", "closes": "08:00"}, "school_hours.closes"),
        ({"holidays": [{"start": "2026-10-30", "end": "2026-10-26"}]}, "school_hours.holidays[1]"),
        ({"holidays": [{"end": "2026-10-26"}]}, "school_hours.holidays[1].start"),
        ({"open": "08:00"}, "school_hours.open"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_school_hours(raw)


def test_a_calendar_with_no_open_day_is_refused_not_looped_over() -> None:
    always_off = SchoolHours(holidays=(Holiday(date(2026, 1, 1), date(2030, 1, 1)),))
    with pytest.raises(ConfigError, match="never open"):
        always_off.next_open(at(2026, 6, 1, 9, 0))


def test_today_is_the_london_date() -> None:
    # 23:30 UTC on 30 June is already 1 July in London.
    moment = datetime(2027, 6, 30, 23, 30, tzinfo=UTC)
    assert SchoolHours().today(moment) == date(2027, 7, 1)
    assert SchoolHours().today(moment - timedelta(hours=1)) == date(2027, 6, 30)
