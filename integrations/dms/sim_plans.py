"""The simulator's plans: each RO's whole simulated life, a pure function of (seed, day, index).

Minutes count from the start of a simulated day (07:00 on the shop floor); the
adapter in simulator.py turns them into timestamps and folds the steps up to "now".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from integrations.dms.parsing import utc_z
from integrations.dms.sim_people import (
    ADVISORS,
    PRIMARY_OPS,
    RECOMMENDED_OPS,
    TECH_NOTES,
    Person,
    cast,
)

CLOSING_STATUSES = ("CLOSED", "VOID")
# Customers a rooftop's simulated days draw from (as many as the cast has distinct phones).
POOL_SIZE = 97


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


def plan_day(
    seed: int, ro_count: int, day: int = 0, *, return_percent: float = 0.0
) -> list[RoPlan]:
    """Plan every RO of simulated day ``day``; a pure function of its arguments.

    Day 0 is the original single day (same ROs, numbers and people). Later days draw
    their customers from the same finite cast, so regulars come back with the same
    name, phone and vehicle. With ``return_percent``, that share of the customers who
    declined work come back later the same day and have it done (a recovery).
    """
    salt = "day" if day == 0 else f"day:{day}"
    rng = random.Random(f"pitwall-sim:{seed}:{salt}")
    # A morning drop-off rush, then a steady trickle until mid-afternoon.
    rush = round(ro_count * 0.45)
    opens = sorted(
        [rng.uniform(0, 90) for _ in range(rush)]
        + [rng.uniform(90, 480) for _ in range(ro_count - rush)]
    )
    people = _pool(seed, ro_count)
    first = day * ro_count
    plans = [
        _plan_ro(
            seed,
            i,
            opens[i],
            people[(first + i) % len(people)],
            ro_count,
            day=day,
            number=_number(seed, day, ro_count, i),
        )
        for i in range(ro_count)
    ]
    returns = [
        _plan_return(seed, day, i, plan, _number(seed, day, ro_count, ro_count + i), return_percent)
        for i, plan in enumerate(plans)
    ]
    return plans + [plan for plan in returns if plan is not None]


@lru_cache(maxsize=32)
def cached_day(seed: int, ro_count: int, day: int, return_percent: float) -> tuple[RoPlan, ...]:
    """`plan_day`, kept for the few days a running simulator reads again and again."""
    return tuple(plan_day(seed, ro_count, day, return_percent=return_percent))


@lru_cache(maxsize=16)
def _pool(seed: int, ro_count: int) -> tuple[Person, ...]:
    # The first ro_count people are day 0's cast exactly; later days cycle through the pool.
    return tuple(cast(seed, max(ro_count, POOL_SIZE)))


def _number(seed: int, day: int, ro_count: int, index: int) -> str:
    """Each seed (rooftop) numbers its ROs in its own range; seed 1 gives R20001, R20002, ...

    A day takes 2 x ro_count numbers: its own ROs, then the return visits they bring.
    """
    return f"R{10001 + seed * 10000 + day * 2 * ro_count + index}"


def _plan_ro(
    seed: int, i: int, opened: float, person: Person, ro_count: int, *, day: int, number: str
) -> RoPlan:
    rng = random.Random(
        f"pitwall-sim:{seed}:ro:{i}" if day == 0 else f"pitwall-sim:{seed}:ro:{day}:{i}"
    )
    customer, vehicle = person.customer, person.vehicle
    codes = iter("ABCDEFGHJK")
    wanted = rng.choices(PRIMARY_OPS, k=rng.choice([1, 1, 2, 2, 3]))
    primary = [_line(next(codes), op, "approved") for op in {op[0]: op for op in wanted}.values()]
    steps = [Step(opened, status="OPEN", add_lines=tuple(primary))]
    if i not in (1, 2) and rng.random() < 0.03:
        steps.append(Step(opened + rng.uniform(10, 40), status="VOID"))
        return _finish(i, seed, number, customer, vehicle, steps)

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
    return _finish(i, seed, number, customer, vehicle, steps)


def _line(code: str, op: tuple[str, str, str], status: str) -> dict[str, Any]:
    op_code, description, amount = op
    line = {
        "line": code,
        "op_code": op_code,
        "description": description,
        "status": status,
        "amount": amount,
    }
    if op_code in TECH_NOTES:
        line["note"] = TECH_NOTES[op_code]
    return line


def _completed(steps: list[Step]) -> tuple[tuple[str, str], ...]:
    """At READY every approved line is completed; declined ones stay declined."""
    status: dict[str, str] = {}
    for step in steps:
        status.update({line["line"]: line["status"] for line in step.add_lines})
        status.update(dict(step.line_status))
    return tuple((code, "completed") for code, s in status.items() if s == "approved")


def _finish(
    i: int,
    seed: int,
    number: str,
    customer: dict[str, Any],
    vehicle: dict[str, Any],
    steps: list[Step],
) -> RoPlan:
    advisor = ADVISORS[random.Random(f"pitwall-sim:{seed}:advisor:{i}").randrange(len(ADVISORS))]
    return RoPlan(number, advisor, customer, vehicle, tuple(steps))


def _final_lines(plan: RoPlan) -> dict[str, dict[str, Any]]:
    lines: dict[str, dict[str, Any]] = {}
    for step in plan.steps:
        lines.update({line["line"]: dict(line) for line in step.add_lines})
        for code, status in step.line_status:
            lines[code]["status"] = status
    return lines


def _plan_return(
    seed: int, day: int, i: int, plan: RoPlan, number: str, return_percent: float
) -> RoPlan | None:
    """The customer comes back after the close and has the declined work done, or None.

    RO 1 of every day (the one that declines brakes) always comes back, so every day
    shows a recovery; the others by ``return_percent``.
    """
    if return_percent <= 0 or plan.steps[-1].status != "CLOSED":
        return None
    declined = [line for line in _final_lines(plan).values() if line["status"] == "declined"]
    rng = random.Random(f"pitwall-sim:{seed}:return:{day}:{i}")
    if not declined or (i != 1 and rng.random() * 100 >= return_percent):
        return None
    opened = plan.steps[-1].minute + rng.uniform(60, 180)
    codes = iter("ABCDEFGHJK")
    lines = tuple(dict(line, line=next(codes), status="approved") for line in declined)
    wip = opened + rng.uniform(10, 30)
    qc = wip + rng.uniform(30, 60)
    ready = qc + rng.uniform(10, 20)
    done = tuple((line["line"], "completed") for line in lines)
    steps = (
        Step(opened, "OPEN", lines, promised_minute=_quarter(ready + 30)),
        Step(wip, "WIP"),
        Step(qc, "QC"),
        Step(ready, "READY", line_status=done),
        Step(ready + rng.uniform(20, 60), "CLOSED"),
    )
    return RoPlan(number, plan.advisor, plan.customer, plan.vehicle, steps)


def ro_payload(
    plan: RoPlan, moment_of: Callable[[float], datetime], minute: float
) -> dict[str, Any] | None:
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
        return utc_z(moment_of(m))

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
