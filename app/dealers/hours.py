"""Store hours: the weekly hours, holidays and special days of a rooftop, in its own zone.

The one place that says whether a rooftop is open and when it opens next; texts
(acknowledgements, text-backs) and calls (the voice menu) all ask it. Standard
library only, so the configuration schema can validate with it.

A day's hours come from, in order: a holiday (closed all day), a special day
(`special_hours`, e.g. "8:00-12:00" or "closed"), or the weekly `store_hours`.
Times are wall-clock times in the rooftop's zone, so 7:00 stays 7:00 across a
daylight-saving change; "24:00" closes at midnight.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIDNIGHT_CLOSE = time.max  # "24:00": open until the day ends
# Far enough to cross a year of holidays; a store that never opens answers None.
_SEARCH_DAYS = 400

_SPAN = re.compile(
    r"^\s*(?P<first>[A-Za-z]{3})(?:\s*-\s*(?P<last>[A-Za-z]{3}))?\s+(?P<times>.+?)\s*$"
)
_TIMES = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class OpenHours:
    """One span of store hours: days of the week (0 = Monday) and the local times."""

    days: tuple[int, ...]
    opens: time
    closes: time


def _clock(hour: str, minute: str, *, closing: bool) -> time:
    h, m = int(hour), int(minute)
    if closing and (h, m) == (24, 0):
        return MIDNIGHT_CLOSE
    if h > 23 or m > 59:
        raise ValueError(f"{hour}:{minute} is not a time of day")
    return time(h, m)


def parse_times(text: str) -> tuple[time, time]:
    """Parse "7:00-18:00" (or "0:00-24:00"); raise ValueError saying what is wrong."""
    match = _TIMES.match(text)
    if not match:
        raise ValueError(f"cannot read {text.strip()!r} (e.g. '7:00-18:00')")
    h1, m1, h2, m2 = match.groups()
    opens, closes = _clock(h1, m1, closing=False), _clock(h2, m2, closing=True)
    if closes <= opens:
        raise ValueError(f"{text.strip()!r} closes before it opens")
    return opens, closes


def parse_store_hours(text: str) -> list[OpenHours]:
    """Parse "Mon-Fri 7:00-18:00, Sat 8:00-16:00"; raise ValueError naming the bad part."""
    spans: list[OpenHours] = []
    for part in text.split(","):
        match = _SPAN.match(part)
        if not match:
            raise ValueError(
                f"store_hours: cannot read {part.strip()!r} (e.g. 'Mon-Fri 7:00-18:00')"
            )
        try:
            first = DAY_NAMES.index(match["first"].title())
            last = DAY_NAMES.index((match["last"] or match["first"]).title())
        except ValueError:
            raise ValueError(f"store_hours: unknown day in {part.strip()!r}") from None
        try:
            opens, closes = parse_times(match["times"])
        except ValueError as exc:
            raise ValueError(f"store_hours: {exc}") from None
        days = (
            tuple(range(first, last + 1)) if first <= last else (*range(first, 7), *range(last + 1))
        )
        spans.append(OpenHours(days=days, opens=opens, closes=closes))
    return spans


def parse_day_hours(text: str) -> tuple[tuple[time, time], ...]:
    """A special day: "closed", or one or more spans "8:00-12:00, 13:00-17:00"."""
    if text.strip().lower() == "closed":
        return ()
    return tuple(parse_times(part) for part in text.split(","))


@dataclass(frozen=True)
class StoreHours:
    """A rooftop's hours in its zone; ask it `is_open(now)` and `next_opening(now)`."""

    weekly: tuple[OpenHours, ...]
    zone: ZoneInfo
    holidays: frozenset[date] = frozenset()
    special: Mapping[date, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        store_hours: str,
        zone: ZoneInfo,
        holidays: Iterable[date] = (),
        special_hours: Mapping[date, str] | None = None,
    ) -> StoreHours:
        """From the configuration's text; raise ValueError naming the bad part."""
        special = {day: parse_day_hours(text) for day, text in (special_hours or {}).items()}
        return cls(tuple(parse_store_hours(store_hours)), zone, frozenset(holidays), special)

    def spans_on(self, day: date) -> tuple[tuple[time, time], ...]:
        """The opening spans of one local date, earliest first (empty when closed)."""
        if day in self.holidays:
            return ()
        if day in self.special:
            return tuple(sorted(self.special[day]))
        weekday = day.weekday()
        return tuple(sorted((s.opens, s.closes) for s in self.weekly if weekday in s.days))

    def is_open(self, now: datetime) -> bool:
        """True when the store is open at `now` (aware), read in the rooftop's zone."""
        local = now.astimezone(self.zone)
        return any(opens <= local.time() < closes for opens, closes in self.spans_on(local.date()))

    def is_holiday(self, moment: datetime) -> bool:
        return moment.astimezone(self.zone).date() in self.holidays

    def next_opening(self, now: datetime) -> datetime | None:
        """When the store next opens after `now` (in now's zone), skipping holidays.

        A span that runs on from the day before (open until midnight, then from 0:00)
        is not an opening. None when the store never opens in the next year.
        """
        local = now.astimezone(self.zone)
        previous_close: datetime | None = None
        for days_ahead in range(-1, _SEARCH_DAYS):
            day = local.date() + timedelta(days=days_ahead)
            for opens, closes in self.spans_on(day):
                start = datetime.combine(day, opens, tzinfo=self.zone)
                continues = previous_close is not None and previous_close >= start
                previous_close = _end_of(day, closes, self.zone)
                if start > local and not continues:
                    return start.astimezone(now.tzinfo)
        return None

    def closed_until(self, now: datetime) -> datetime | None:
        """The next opening while the store is closed; None while it is open (or never opens)."""
        if self.is_open(now):
            return None
        return self.next_opening(now)


def _end_of(day: date, closes: time, zone: ZoneInfo) -> datetime:
    if closes == MIDNIGHT_CLOSE:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return datetime.combine(day, closes, tzinfo=zone)
