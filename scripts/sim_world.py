"""The simulated DMS world: customers, their cars, visits, and comebacks for declined work.

scripts/simulate_month.py drives it through the real code. `ReturnRates` is the known
truth of the follow-up holdout: the chance that a customer comes back for a plan's
declined work, followed up or held out.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select

from app.dealers.models import Rooftop
from app.deps import Database
from app.followups.models import FollowupLine, FollowupPlan
from app.repair_orders.models import RepairOrder, RoLine
from integrations.dms.base import DmsCustomer, DmsLine, DmsPhone, DmsVehicle, RepairOrderRecord

T = TypeVar("T")
START = datetime(2026, 10, 19, 0, 0, tzinfo=ZoneInfo("America/Los_Angeles"))  # a Monday
DAYS = 31
ROUTINE = [("OILCHG", "Oil and filter", 8995), ("ROTATE", "Tire rotation", 3995)]
DECLINABLE = [
    ("BRKPAD", "Front brake pads", 41200),
    ("TIRES4", "Four tires", 78000),
    ("ALIGN", "Wheel alignment", 12995),
    ("WIPER", "Wiper blades", 4500),
    ("COOLFL", "Coolant flush", 15900),
    ("BATT", "Battery", 21900),
]
ADVISORS = {
    "bayview-toyota": [("A7", "Dana Ruiz"), ("A9", "Lee Park")],
    "bayview-ford": [("F2", "Kim Ortiz")],
}
FIRST = ["Sam", "Ana", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo", "Kai"]
# One surname per customer of the default month: erasing one customer must not find another's.
LAST = [
    "Lee", "Diaz", "Chen", "Ng", "Ruiz", "Khan", "Moss", "Cole", "Quon", "Shah", "Okafor", "Varga",
    "Lindqvist", "Haddad", "Moreau", "Tanaka", "Kowalski", "Nakamura", "Oyelaran", "Brennan",
    "Castellano", "Dvorak", "Eriksen", "Fitzgerald", "Guzman", "Halvorsen", "Iwu", "Jovanovic",
    "Kincaid", "Lachance", "Mbeki", "Novak", "Ostrowski", "Pellegrini", "Quintero", "Rasmussen",
]  # fmt: skip
CUSTOMERS_PER_DAILY_VISIT = 18  # 2 visits a day per rooftop: 36 customers


@dataclasses.dataclass(frozen=True)
class ReturnRates:
    """The truth the report should find: P(customer comes back for a plan's declined work)."""

    followed: float = 0.30
    held_out: float = 0.18

    @property
    def effect(self) -> float:
        """Followed minus held out: the true difference in lines (and dollars) recovered."""
        return self.followed - self.held_out


@dataclasses.dataclass(frozen=True)
class Closing:
    """An RO that will close with declined lines; its plan decides whether they come back."""

    slug: str
    number: str
    day: datetime
    customer: DmsCustomer


def _vin(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(17))


@dataclasses.dataclass
class World:
    """The DMS side: customers, their cars, and every RO's current record per rooftop."""

    rng: random.Random
    customers: list[DmsCustomer]
    vehicles: dict[str, DmsVehicle]
    records: dict[tuple[str, str], RepairOrderRecord] = dataclasses.field(default_factory=dict)
    events: dict[datetime, list[Callable[[], None]]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    dirty: set[tuple[str, str]] = dataclasses.field(default_factory=set)  # changed since last poll
    closings: dict[datetime, list[Closing]] = dataclasses.field(
        default_factory=lambda: defaultdict(list)
    )
    counter: int = 1000

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        self.events[hour].append(action)

    def due(self, table: dict[datetime, list[T]], tick: datetime, hours: int) -> list[T]:
        """What `table` holds for the `hours` hours up to and including `tick`."""
        return [x for hour in range(hours) for x in table.pop(tick - timedelta(hours=hour), [])]


def people(rng: random.Random, count: int = 36) -> tuple[list[DmsCustomer], dict[str, DmsVehicle]]:
    customers, vehicles = [], {}
    for i in range(count):
        consent = True if rng.random() < 0.8 else None  # None: rooftop policy (no marketing)
        # Past the first 36, numbers leave 555-01xx, where the rooftops' own numbers are.
        phone = f"(415) 555-{110 + i:04d}" if i < 36 else f"(628) 210-{i:04d}"
        customer = DmsCustomer(
            external_id=f"C{i:04d}" if i >= 1000 else f"C{i:03d}",
            first_name=FIRST[i % len(FIRST)],
            last_name=LAST[i % len(LAST)],
            phones=(DmsPhone(phone, "mobile"),),
            language="en",
            sms_consent=True,
            marketing_consent=consent,
        )
        customers.append(customer)
        vin = _vin(rng) if rng.random() < 0.85 else None
        vehicles[customer.external_id] = DmsVehicle(
            vin=vin, year=2015 + i % 9, make=rng.choice(["Toyota", "Ford"]), model="Sedan"
        )
    return customers, vehicles


def _plan_visit(
    world: World, slug: str, day: datetime, customer: DmsCustomer, lines: list[DmsLine]
) -> None:
    """Schedule one visit's DMS changes; one with declined lines is remembered at its close."""
    rng = world.rng
    world.counter += 1
    number = f"{'T' if 'toyota' in slug else 'F'}{world.counter}"
    opened = day + timedelta(hours=7, minutes=rng.choice([30, 60, 90, 120, 150]))
    promised = day + timedelta(hours=16)
    advisor = rng.choice(ADVISORS[slug])
    base = RepairOrderRecord(
        ro_number=number,
        raw_status="OPEN",
        opened_at=opened.astimezone(UTC),
        promised_at=promised.astimezone(UTC),
        advisor_id=advisor[0],
        advisor_name=advisor[1],
        customer=customer,
        vehicle=world.vehicles[customer.external_id],
        lines=tuple(lines),
    )
    key = (slug, number)

    def put(**changes: object) -> Callable[[], None]:
        def action() -> None:
            world.records[key] = msgspec.structs.replace(world.records.get(key, base), **changes)
            world.dirty.add(key)

        return action

    world.at(opened, put())
    world.at(opened + timedelta(hours=1), put(raw_status="WIP"))
    if rng.random() < 0.25:  # parts delayed: the DMS moves the promise (customer told once)
        world.at(
            opened + timedelta(hours=3),
            put(raw_status="PARTS", promised_at=(promised + timedelta(hours=2)).astimezone(UTC)),
        )
        ready = promised + timedelta(hours=1, minutes=30)
    elif rng.random() < 0.2:  # waits on approval all afternoon, then runs late
        world.at(opened + timedelta(hours=2), put(raw_status="WAITAPPR"))
        ready = promised + timedelta(hours=1, minutes=50)  # the 16:00 tick sees it not ready
    else:
        ready = promised - timedelta(minutes=rng.choice([30, 60, 90]))
    world.at(ready, put(raw_status="READY"))
    closed = ready + timedelta(hours=1)
    world.at(closed, put(raw_status="CLOSED", closed_at=closed.astimezone(UTC)))
    if any(line.status == "declined" for line in lines):
        hour = closed.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        world.closings[hour].append(Closing(slug, number, day, customer))


def seed_month(world: World, days: int = DAYS, visits_per_day: int = 2) -> None:
    """Each rooftop's visits, every day but Sunday; about three in four decline something."""
    rng = world.rng
    for offset in range(days - 3):
        day = (START + timedelta(days=offset)).replace(hour=0)  # wall-clock midnight
        if day.weekday() == 6:
            continue
        for slug in ADVISORS:
            for _ in range(visits_per_day):
                customer = rng.choice(world.customers)
                lines = [DmsLine("A", *ROUTINE[rng.randrange(2)], "approved")]
                for code, item in zip(
                    "BC", rng.sample(DECLINABLE, rng.choice([0, 1, 1, 2])), strict=False
                ):
                    lines.append(DmsLine(code, *item, "declined"))
                _plan_visit(world, slug, day, customer, lines)


def comebacks(
    database: Database,
    world: World,
    closings: list[Closing],
    rng: random.Random,
    rates: ReturnRates,
) -> None:
    """At each close, the plan the real code made (or held out) decides if the work comes back.

    A customer comes back for every line of the plan, 4 to 14 days later, sometimes at the
    other store; lines no plan covers never come back, so each recovery in the experiment
    traces to one draw with a known probability.
    """
    plans: list[tuple[Closing, bool, list[RoLine]]] = []
    with database.transaction() as session:
        for closing in closings:
            plan = session.scalar(
                select(FollowupPlan)
                .join(RepairOrder, RepairOrder.id == FollowupPlan.repair_order_id)
                .join(Rooftop, Rooftop.id == RepairOrder.rooftop_id)
                .where(Rooftop.slug == closing.slug, RepairOrder.ro_number == closing.number)
            )
            if plan is None:
                continue
            lines = session.scalars(
                select(RoLine)
                .join(FollowupLine, FollowupLine.ro_line_id == RoLine.id)
                .where(FollowupLine.plan_id == plan.id)
                .order_by(RoLine.id)
            ).all()
            plans.append((closing, plan.holdout, list(lines)))
    for closing, held_out, lines in plans:
        if rng.random() >= (rates.held_out if held_out else rates.followed):
            continue
        back_day = closing.day + timedelta(days=rng.randint(4, 14))
        if back_day.weekday() == 6:
            back_day += timedelta(days=1)
        back_slug = (
            closing.slug if rng.random() < 0.7 else next(s for s in ADVISORS if s != closing.slug)
        )
        back_lines = [DmsLine("A", *ROUTINE[0], "approved")] + [
            DmsLine(code, ln.op_code, ln.description, ln.amount_cents - 1000, "approved")
            for code, ln in zip("BCDEFG", lines, strict=False)
        ]
        _plan_visit(world, back_slug, back_day, closing.customer, back_lines)
