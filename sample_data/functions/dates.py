"""Dates and times: calendar arithmetic on ISO 8601 dates (YYYY-MM-DD)."""

from __future__ import annotations

import calendar
import datetime


def _date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def days_between(start_date: str, end_date: str) -> int:
    """Days from start_date to end_date (negative when end_date comes first)."""
    return (_date(end_date) - _date(start_date)).days


def add_days(date: str, days: int) -> datetime.date:
    """The date a number of days after (or, when negative, before) a date."""
    return _date(date) + datetime.timedelta(days=days)


def day_of_week(date: str) -> str:
    """The weekday name of a date."""
    return calendar.day_name[_date(date).weekday()]


def is_leap_year(year: int) -> bool:
    """Whether a year of the Gregorian calendar is a leap year."""
    return calendar.isleap(year)


def age_on(birth_date: str, on_date: str) -> dict[str, int]:
    """Someone's age in whole years (and days since the last birthday) on a given date."""
    born, day = _date(birth_date), _date(on_date)
    if day < born:
        raise ValueError("on_date is before birth_date")
    years = day.year - born.year - ((day.month, day.day) < (born.month, born.day))
    try:
        last_birthday = born.replace(year=born.year + years)
    except ValueError:  # born on 29 February
        last_birthday = datetime.date(born.year + years, 3, 1)
    return {"years": years, "days_since_birthday": (day - last_birthday).days}


def business_days_between(start_date: str, end_date: str) -> int:
    """Weekdays (Monday to Friday) from start_date up to, not including, end_date."""
    start, end = _date(start_date), _date(end_date)
    if end < start:
        raise ValueError("end_date is before start_date")
    full_weeks, rest = divmod((end - start).days, 7)
    count = full_weeks * 5
    for offset in range(rest):
        if (start + datetime.timedelta(days=full_weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count


def format_duration(seconds: int, style: str = "long") -> str:
    """A number of seconds as days, hours, minutes and seconds ("long") or as H:MM:SS ("clock")."""
    if seconds < 0:
        raise ValueError("seconds must be non-negative")
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if style == "clock":
        return f"{hours}:{minutes:02d}:{secs:02d}"
    days, hours = divmod(hours, 24)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")]
    words = [f"{count} {unit}{'s' if count != 1 else ''}" for count, unit in parts if count]
    return ", ".join(words) or "0 seconds"
