"""The period of a report: whole days, first and last included, and the one before it."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

# The longest period a report covers: a year and a day (the daily chart stays readable,
# and the read stays within the read API's budgets).
MAX_DAYS = 367
# Days a report may name: the collector's own era, so that no date arithmetic (the
# previous period, epoch seconds) can leave what datetime holds.
FIRST_YEAR, LAST_YEAR = 2000, 2199


class BadPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # included

    def __post_init__(self) -> None:
        if not (FIRST_YEAR <= self.first.year and self.last.year <= LAST_YEAR):
            raise BadPeriod(f"a report's days are in the years {FIRST_YEAR}-{LAST_YEAR}")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def calendar_month(self) -> bool:
        return self.first.day == 1 and self.last == _month_end(self.first)

    @property
    def month_id(self) -> str:
        """YYYY-MM of its first day (the month of a calendar-month report)."""
        return self.first.strftime("%Y-%m")

    def previous(self) -> Period:
        """The previous calendar month for a calendar month, else the same number of days just before."""
        if self.calendar_month:
            last = self.first - timedelta(days=1)
            return Period(last.replace(day=1), last)
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def as_dict(self) -> dict:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "days": self.days}

    def label_zh(self) -> str:
        return f"{self.first:%Y-%m-%d} 至 {self.last:%Y-%m-%d}"


def month(text: str) -> Period:
    """YYYY-MM as a Period, or BadPeriod."""
    try:
        year, number = (int(part) for part in text.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise BadPeriod(f"month must be YYYY-MM, not {text[:20]!r}") from None
    return Period(first, _month_end(first))  # BadPeriod outside the years reports cover


def last_whole_month(today: date) -> Period:
    return month((today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))


def parse_period(today: date, month_text: str | None = None, start: str | None = None, end: str | None = None) -> Period:
    """A calendar month (`month`), a range of days (`start`, `end`), or the last whole month."""
    if month_text and (start or end):
        raise BadPeriod("give month, or from and to, not both")
    if month_text:
        return month(month_text)
    if not start and not end:
        return last_whole_month(today)
    if not (start and end):
        raise BadPeriod("from and to go together (YYYY-MM-DD, both days included)")
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise BadPeriod("from and to are days: YYYY-MM-DD") from None
    period = Period(first, last)
    if period.last < period.first:
        raise BadPeriod("to is before from")
    if period.days > MAX_DAYS:
        raise BadPeriod(f"a report covers at most {MAX_DAYS} days")
    return period


def _month_end(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])
