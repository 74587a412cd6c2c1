"""A seeded, time-compressed, deterministic service department (``kind = "simulator"``).

Each simulated day is planned up front from ``(seed, day)`` (integrations/dms/sim_plans.py);
the state of the world at a moment is a fold of the planned steps up to it, so it
is a pure function of (seed, start, moment): polling twice at the same moment yields
identical records, and ``fetch_changed(since)`` yields exactly the ROs whose
``updated_at`` is after ``since``. Records are in the REST bridge shape. Days roll
over for as long as the simulator runs (or for ``days`` days), each with new ROs.

Two timelines, both running ``speed`` times faster than real time on the shop floor:

- simulated (the default): a day starts at 07:00 in the rooftop's zone on the clock's
  date at start-up, and simulated time runs ahead of the clock::

      sim_now = day_start + start_offset + (clock() - started_at) * speed

- ``live = true`` (the demo): every timestamp is real (the clock's), and a planned
  minute lasts 1/speed of a real one; a day is ``day_minutes`` planned minutes. Texts,
  follow-ups, store hours and reports then all read one clock.

Note for the poller: ``since`` is compared with the records' own ``updated_at``,
so pass the high-water mark of what was read, not the wall clock. ``now()``
exposes the simulator's time for demo screens.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.dms.base import DmsPage, RawRecord, RepairOrderRecord, utcnow
from integrations.dms.parsing import utc_z
from integrations.dms.rest import normalise_bridge_record
from integrations.dms.sim_plans import (
    CLOSING_STATUSES,
    RoPlan,
    Step,
    cached_day,
    plan_day,
    ro_payload,
)

__all__ = [
    "CLOSING_STATUSES",
    "OPEN_STATUSES",
    "RoPlan",
    "SimulatorAdapter",
    "Step",
    "plan_day",
    "ro_payload",
    "simulator_status_map",
]

OPEN_STATUSES = ("OPEN", "DIAG", "WAITAPPR", "PARTS", "WIP", "QC", "READY", "HOLD")


def simulator_status_map() -> dict[str, str]:
    """The recommended status map for the simulator; HOLD is left unmapped on purpose."""
    return {
        "OPEN": "checked_in",
        "DIAG": "diagnosing",
        "WAITAPPR": "awaiting_approval",
        "PARTS": "awaiting_parts",
        "WIP": "in_repair",
        "QC": "quality_check",
        "READY": "ready_for_pickup",
        "CLOSED": "closed",
        "VOID": "canceled",
    }


class SimulatorAdapter:
    """A deterministic DMS for the demo and tests; see the module docstring."""

    kind = "simulator"
    snapshot = False

    def __init__(
        self,
        *,
        seed: int = 1,
        speed: float = 60.0,
        ro_count: int = 40,
        clock: Callable[[], datetime] = utcnow,
        timezone: str = "America/Los_Angeles",
        start_offset_minutes: float = 0.0,
        day_start: datetime | None = None,
        page_size: int = 50,
        days: int = 0,
        live: bool = False,
        day_minutes: float = 1440.0,
        return_percent: float = 0.0,
    ) -> None:
        if speed <= 0 or ro_count < 0 or page_size < 1 or days < 0:
            raise ValueError(
                "simulator: speed must be > 0, ro_count >= 0, page_size >= 1, days >= 0"
            )
        if not 480 <= day_minutes <= 1440 or not 0 <= return_percent <= 100:
            raise ValueError("simulator: day_minutes must be 480-1440, return_percent 0-100")
        self.seed, self.speed, self.ro_count = seed, speed, ro_count
        self.days, self.live, self.return_percent = days, live, float(return_percent)
        self.day_minutes = day_minutes if live else 1440.0
        self.clock = clock
        self.zone = ZoneInfo(timezone)
        self.started_at = clock()
        if day_start is None:
            local_date = self.started_at.astimezone(self.zone).date()
            day_start = datetime.combine(local_date, time(7, 0), tzinfo=self.zone)
        self.day_start = day_start
        self.start_offset = timedelta(minutes=start_offset_minutes)
        self.page_size = page_size
        self.plans = plan_day(seed, ro_count, return_percent=self.return_percent)
        self._ends: dict[int, datetime] = {}

    # --- time -------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulator's time now: simulated, or the clock's own on a live timeline."""
        if self.live:
            return self.clock()
        return self.day_start + self.start_offset + (self.clock() - self.started_at) * self.speed

    def moment_of(self, day: int, minute: float) -> datetime:
        """When minute ``minute`` of simulated day ``day`` happens (rounded to the second)."""
        if self.live:
            planned = day * self.day_minutes + minute - self.start_offset.total_seconds() / 60
            moment = self.started_at + timedelta(minutes=planned / self.speed)
            return moment.replace(microsecond=0) + timedelta(
                seconds=round(moment.microsecond / 1e6)
            )
        local = datetime.combine(
            self.day_start.date() + timedelta(days=day), self.day_start.timetz()
        )
        return local + timedelta(seconds=round(minute * 60))

    def minute_of(self, day: int, moment: datetime) -> float:
        """The minute of simulated day ``day`` that ``moment`` falls on (may be past its end)."""
        if self.live:
            elapsed = (moment - self.started_at).total_seconds() / 60 * self.speed
            return elapsed + self.start_offset.total_seconds() / 60 - day * self.day_minutes
        start = self.moment_of(day, 0)
        return (moment - start).total_seconds() / 60

    def day_at(self, moment: datetime) -> int:
        """The simulated day ``moment`` falls on (-1 before the first day starts)."""
        if self.live:
            day = math.floor(self.minute_of(0, moment) / self.day_minutes)
        else:
            day = (moment.astimezone(self.zone).date() - self.day_start.date()).days
            if moment < self.moment_of(day, 0):
                day -= 1
        day = max(day, -1)
        return min(day, self.days - 1) if self.days else day

    # --- the world ----------------------------------------------------------------

    def _day_plans(self, day: int) -> tuple[RoPlan, ...]:
        return cached_day(self.seed, self.ro_count, day, self.return_percent)

    def _day_ends(self, day: int) -> datetime:
        """When the last step of a day's ROs (returns included) happens."""
        if day not in self._ends:
            last = max((plan.steps[-1].minute for plan in self._day_plans(day)), default=0.0)
            self._ends[day] = self.moment_of(day, last)
        return self._ends[day]

    def _payloads(self, moment: datetime, days: range) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for day in days:
            minute = self.minute_of(day, moment)
            moment_of = functools.partial(self.moment_of, day)
            for plan in self._day_plans(day):
                payload = ro_payload(plan, moment_of, minute)
                if payload is not None:
                    found.append(payload)
        return found

    def records_at(self, moment: datetime) -> list[dict[str, Any]]:
        """Every RO opened by ``moment`` (closed ones too), in bridge shape."""
        return self._payloads(moment, range(self.day_at(moment) + 1))

    def _live_days(self, moment: datetime, after: datetime | None) -> range:
        """Days with ROs changed after ``after`` (open ones when None): the rest are done."""
        last = self.day_at(moment)
        first = 0
        while first <= last and self._day_ends(first) <= (after or moment) - timedelta(minutes=1):
            first += 1
        return range(first, last + 1)

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """ROs with ``updated_at`` after ``since``; every open RO when ``since`` is None."""
        moment = self.now()
        records = self._payloads(moment, self._live_days(moment, since))
        if since is None:
            chosen = [r for r in records if r["closed_at"] is None]
        else:
            cutoff = utc_z(since)
            # Same format on both sides (UTC, Z, whole seconds), so text order is time order.
            chosen = [r for r in records if r["updated_at"] > cutoff]
        chosen.sort(key=lambda r: (r["updated_at"], r["ro_number"]))
        for start in range(0, len(chosen), self.page_size):
            page = chosen[start : start + self.page_size]
            yield DmsPage(records=[RawRecord(payload=r, ro_number=r["ro_number"]) for r in page])

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Records are in the bridge shape."""
        return normalise_bridge_record(record.payload)

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """The RO as it stands now, or None if it does not exist (yet)."""
        moment = self.now()
        day = self._day_of_number(ro_number)
        if day is None or day > self.day_at(moment):
            return None
        for plan in self._day_plans(day):
            if plan.ro_number == ro_number:
                minute = self.minute_of(day, moment)
                payload = ro_payload(plan, lambda m: self.moment_of(day, m), minute)
                return None if payload is None else RawRecord(payload=payload, ro_number=ro_number)
        return None

    def _day_of_number(self, ro_number: str) -> int | None:
        """Numbers run on day after day (see sim_plans._number), so the number names its day."""
        digits = ro_number.removeprefix("R")
        if not digits.isdigit() or self.ro_count == 0:
            return None
        index = int(digits) - (10001 + self.seed * 10000)
        return index // (2 * self.ro_count) if index >= 0 else None

    def check(self) -> None:
        """The simulator is always reachable."""

    def close(self) -> None:
        """Nothing to release."""
