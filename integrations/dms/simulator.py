"""A seeded, time-compressed, deterministic busy service day (``kind = "simulator"``).

Simulated time runs ``speed`` times faster than ``clock``::

    sim_now = day_start + start_offset + (clock() - started_at) * speed

``day_start`` is 07:00 in the rooftop's zone on the clock's date at start-up.
Each RO's whole life is planned up front from ``(seed, index)``; the state of
the world at simulated time t is a fold of the planned steps up to t, so it is
a pure function of (seed, day_start, t): polling twice at the same t yields
identical records, and ``fetch_changed(since)`` yields exactly the ROs whose
``updated_at`` is after ``since``. Records are in the REST bridge shape.

Note for the poller: ``since`` is compared with the records' own ``updated_at``
(simulated time), so pass the high-water mark of what was read, not the wall
clock. ``now()`` exposes simulated time for demo screens.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.dms.base import DmsPage, RawRecord, RepairOrderRecord, utcnow
from integrations.dms.parsing import utc_z
from integrations.dms.rest import normalise_bridge_record
from integrations.dms.sim_people import ADVISORS, PRIMARY_OPS, RECOMMENDED_OPS, cast

OPEN_STATUSES = ("OPEN", "DIAG", "WAITAPPR", "PARTS", "WIP", "QC", "READY", "HOLD")
CLOSING_STATUSES = ("CLOSED", "VOID")


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


@dataclass(frozen=True)
class Step:
    """Something that happens to an RO at ``minute`` after day start."""

    minute: float
    status: str | None = None
    add_lines: tuple[dict[str, Any], ...] = ()
    line_status: tuple[tuple[str, str], ...] = ()  # (line code, new status)
    promised_minute: float | None = None


@dataclass(frozen=True)
class RoPlan:
    """An RO's whole simulated life."""

    ro_number: str
    advisor: tuple[str, str]
    customer: dict[str, Any]
    vehicle: dict[str, Any]
    steps: tuple[Step, ...] = field(default=())


def _quarter(minute: float) -> float:
    """Round up to a quarter hour, as advisors promise times."""
    return -(-minute // 15) * 15


def plan_day(seed: int, ro_count: int) -> list[RoPlan]:
    """Plan every RO of the day; a pure function of (seed, ro_count)."""
    day = random.Random(f"pitwall-sim:{seed}:day")
    # A morning drop-off rush, then a steady trickle until mid-afternoon.
    rush = round(ro_count * 0.45)
    opens = sorted(
        [day.uniform(0, 90) for _ in range(rush)]
        + [day.uniform(90, 480) for _ in range(ro_count - rush)]
    )
    people = cast(seed, ro_count)
    return [
        _plan_ro(seed, i, opens[i], people[i].customer, people[i].vehicle, ro_count)
        for i in range(ro_count)
    ]


def _plan_ro(
    seed: int,
    i: int,
    opened: float,
    customer: dict[str, Any],
    vehicle: dict[str, Any],
    ro_count: int,
) -> RoPlan:
    rng = random.Random(f"pitwall-sim:{seed}:ro:{i}")
    codes = iter("ABCDEFGHJK")
    wanted = rng.choices(PRIMARY_OPS, k=rng.choice([1, 1, 2, 2, 3]))
    primary = [_line(next(codes), op, "approved") for op in {op[0]: op for op in wanted}.values()]
    steps = [Step(opened, status="OPEN", add_lines=tuple(primary))]
    if i not in (1, 2) and rng.random() < 0.03:
        steps.append(Step(opened + rng.uniform(10, 40), status="VOID"))
        return _finish(i, seed, customer, vehicle, steps)

    now = opened + rng.uniform(10, 30)
    steps.append(Step(now, status="DIAG"))
    # Forced cases keep every seed's day interesting: RO 1 declines brakes, RO 2 runs late.
    asks_approval = i == 1 or rng.random() < 0.4
    needs_parts = rng.random() < 0.2
    holds = i == ro_count // 2 or rng.random() < 0.04
    late = i == 2 or rng.random() < 0.2
    if asks_approval:
        now += rng.uniform(20, 50)
        offered = rng.sample(RECOMMENDED_OPS, k=rng.choice([1, 2, 2, 3]))
        if i == 1:
            offered = [RECOMMENDED_OPS[0], *[op for op in offered if op[0] != "BRKPAD"]][:3]
        unique = list({op[0]: op for op in offered}.values())
        recommended = [_line(next(codes), op, "pending") for op in unique]
        steps.append(Step(now, status="WAITAPPR", add_lines=tuple(recommended)))
        now += rng.uniform(15, 90)
        decisions = tuple(
            (
                line["line"],
                "declined" if (i == 1 and n == 0) or rng.random() >= 0.45 else "approved",
            )
            for n, line in enumerate(recommended)
        )
        steps.append(Step(now, status="PARTS" if needs_parts else "WIP", line_status=decisions))
    elif needs_parts:
        now += rng.uniform(20, 60)
        steps.append(Step(now, status="PARTS"))
    parts_at = now if needs_parts else None
    if needs_parts:
        now += rng.uniform(60, 180)
        steps.append(Step(now, status="WIP"))
    elif not asks_approval:
        now += rng.uniform(10, 40)
        steps.append(Step(now, status="WIP"))
    work = rng.uniform(30, 120)
    if holds:
        steps.append(Step(now + work / 2, status="HOLD"))
        now += rng.uniform(20, 45)
        steps.append(Step(now + work / 2, status="WIP"))
    now += work
    steps.append(Step(now, status="QC"))
    now += rng.uniform(10, 25)
    ready = now
    finished = _completed(steps)
    steps.append(Step(ready, status="READY", line_status=finished))
    steps.append(Step(ready + rng.uniform(20, 180), status="CLOSED"))

    final_promise = _quarter(ready - rng.uniform(15, 90) if late else ready + rng.uniform(10, 60))
    final_promise = max(final_promise, _quarter(opened + 60))
    if parts_at is not None and rng.random() < 0.5:
        # Parts delayed: the first promise was too early and is moved when parts are ordered.
        first_promise = _quarter(opened + rng.uniform(90, 150))
        steps[0] = Step(opened, "OPEN", steps[0].add_lines, promised_minute=first_promise)
        at = next(k for k, s in enumerate(steps) if s.minute == parts_at)
        steps[at] = Step(
            parts_at,
            steps[at].status,
            steps[at].add_lines,
            steps[at].line_status,
            promised_minute=final_promise,
        )
    else:
        steps[0] = Step(opened, "OPEN", steps[0].add_lines, promised_minute=final_promise)
    return _finish(i, seed, customer, vehicle, steps)


def _line(code: str, op: tuple[str, str, str], status: str) -> dict[str, Any]:
    op_code, description, amount = op
    return {
        "line": code,
        "op_code": op_code,
        "description": description,
        "status": status,
        "amount": amount,
    }


def _completed(steps: list[Step]) -> tuple[tuple[str, str], ...]:
    """At READY every approved line is completed; declined ones stay declined."""
    status: dict[str, str] = {}
    for step in steps:
        status.update({line["line"]: line["status"] for line in step.add_lines})
        status.update(dict(step.line_status))
    return tuple((code, "completed") for code, s in status.items() if s == "approved")


def _finish(
    i: int, seed: int, customer: dict[str, Any], vehicle: dict[str, Any], steps: list[Step]
) -> RoPlan:
    advisor = ADVISORS[random.Random(f"pitwall-sim:{seed}:advisor:{i}").randrange(len(ADVISORS))]
    # Each seed (rooftop) numbers its ROs in its own range; seed 1 gives R20001, R20002, ...
    return RoPlan(f"R{10001 + seed * 10000 + i}", advisor, customer, vehicle, tuple(steps))


def ro_payload(plan: RoPlan, day_start: datetime, minute: float) -> dict[str, Any] | None:
    """The RO as the bridge would show it at ``minute``; None before it is opened."""
    if minute < plan.steps[0].minute:
        return None
    status, updated, promised = "OPEN", plan.steps[0].minute, None
    lines: dict[str, dict[str, Any]] = {}
    for step in plan.steps:
        if step.minute > minute:
            break
        updated = step.minute
        status = step.status or status
        lines.update({line["line"]: dict(line) for line in step.add_lines})
        for code, new in step.line_status:
            lines[code]["status"] = new
        if step.promised_minute is not None:
            promised = step.promised_minute

    def at(m: float) -> str:
        return utc_z(day_start + timedelta(seconds=round(m * 60)))

    return {
        "ro_number": plan.ro_number,
        "status": status,
        "opened_at": at(plan.steps[0].minute),
        "updated_at": at(updated),
        "promised_at": at(promised) if promised is not None else None,
        "closed_at": at(updated) if status in CLOSING_STATUSES else None,
        "advisor": {"id": plan.advisor[0], "name": plan.advisor[1]},
        "customer": plan.customer,
        "vehicle": plan.vehicle,
        "lines": list(lines.values()),
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
    ) -> None:
        if speed <= 0 or ro_count < 0 or page_size < 1:
            raise ValueError("simulator: speed must be > 0, ro_count >= 0, page_size >= 1")
        self.seed, self.speed, self.ro_count = seed, speed, ro_count
        self.clock = clock
        self.started_at = clock()
        if day_start is None:
            zone = ZoneInfo(timezone)
            local_date = self.started_at.astimezone(zone).date()
            day_start = datetime.combine(local_date, time(7, 0), tzinfo=zone)
        self.day_start = day_start
        self.start_offset = timedelta(minutes=start_offset_minutes)
        self.page_size = page_size
        self.plans = plan_day(seed, ro_count)

    def now(self) -> datetime:
        """Simulated time now."""
        return self.day_start + self.start_offset + (self.clock() - self.started_at) * self.speed

    def records_at(self, moment: datetime) -> list[dict[str, Any]]:
        """Every RO opened by ``moment`` (closed ones too), in bridge shape, by RO number."""
        minute = (moment - self.day_start).total_seconds() / 60
        found = (ro_payload(plan, self.day_start, minute) for plan in self.plans)
        return [payload for payload in found if payload is not None]

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """ROs with ``updated_at`` after ``since``; every open RO when ``since`` is None."""
        records = self.records_at(self.now())
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
        for payload in self.records_at(self.now()):
            if payload["ro_number"] == ro_number:
                return RawRecord(payload=payload, ro_number=ro_number)
        return None

    def check(self) -> None:
        """The simulator is always reachable."""

    def close(self) -> None:
        """Nothing to release."""
