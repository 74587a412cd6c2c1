"""A simulated month at Bayview Auto Group, then the declined-recovery report, traced to rows.

    .venv/bin/python -m scripts.simulate_month [--seed 7] [--database-url sqlite:///sim.db]

Everything runs through the real code: DMS records are stored by
`apply_record` with the production change hooks (status texts, follow-ups, the
watchdog's promised-time hook), replies go through the inbound text service, the
worker's follow-up and watchdog jobs run every hour, and the real dispatcher sends
through a recording gateway (the only fake: the edge where Twilio would be), so
consent, quiet hours and the daily cap decide what a customer actually got. The
month spans the end of daylight-saving time (Nov 1 2026).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import threading
import tomllib
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import time_machine
from sqlalchemy import select

from app.config import parse_dealer_config
from app.conversations.service import receive_message
from app.db import make_engine, make_session_factory, utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.followups.jobs import run_followups, run_watchdog
from app.followups.models import FollowupTouch, Recovery
from app.followups.watchdog import on_promised_change
from app.messaging.dispatcher import dispatch_due
from app.messaging.models import OutboundMessage
from app.migrate import upgrade_to_head
from app.repair_orders.models import RepairOrder, RoLine
from app.repair_orders.service import apply_record
from app.reports.schemas import DeclinedRecoveryReport
from app.reports.service import declined_recovery
from app.wiring import change_hooks
from integrations.dms.base import DmsCustomer, DmsLine, DmsPhone, DmsVehicle, RepairOrderRecord
from integrations.twilio.base import OutgoingMessage, SentMessage

ROOT = Path(__file__).resolve().parent.parent
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
LAST = ["Lee", "Diaz", "Chen", "Ng", "Ruiz", "Khan", "Moss", "Cole", "Park", "Shah"]


class RecordingGateway:
    """The world's edge: accepts every message, as Twilio would, and remembers it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: list[OutgoingMessage] = []

    def send(self, msg: OutgoingMessage) -> SentMessage:
        with self._lock:
            self.sent.append(msg)
            return SentMessage(sid=f"SM{len(self.sent):032x}", status="sent", num_segments=1)

    def find_existing(self, **_: object) -> SentMessage | None:
        return None

    def fetch(self, sid: str) -> SentMessage:
        return SentMessage(sid=sid, status="delivered")

    def check_credentials(self) -> str:
        return "simulated account"


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
    counter: int = 1000

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        hour = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        self.events[hour].append(action)


def _people(rng: random.Random) -> tuple[list[DmsCustomer], dict[str, DmsVehicle]]:
    customers, vehicles = [], {}
    for i in range(36):
        consent = True if rng.random() < 0.8 else None  # None: rooftop policy (no marketing)
        customer = DmsCustomer(
            external_id=f"C{i:03d}",
            first_name=FIRST[i % len(FIRST)],
            last_name=LAST[i % len(LAST)],
            phones=(DmsPhone(f"(415) 555-{110 + i:04d}", "mobile"),),
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


def load_dealer(database: Database) -> None:
    """The sample dealer, with a fast sender (pacing is real-time; the month is not)."""
    data = tomllib.loads((ROOT / "config" / "sample-dealer.toml").read_text(encoding="utf-8"))
    for rooftop in data["rooftop"]:
        rooftop["send_rate_per_second"] = 1000
        rooftop["stage_alert_minutes"] = {"awaiting_approval": 120}
    config = parse_dealer_config(data, "sample-dealer.toml (simulation)")
    with database.transaction() as session:
        apply_dealer_config(session, config=config, source="simulation")


def _plan_visit(
    world: World, slug: str, day: datetime, customer: DmsCustomer, lines: list[DmsLine]
) -> None:
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


def seed_month(world: World, days: int = DAYS) -> None:
    rng = world.rng
    for offset in range(days - 3):
        day = (START + timedelta(days=offset)).replace(hour=0)  # wall-clock midnight
        if day.weekday() == 6:
            continue
        for slug in ADVISORS:
            for _ in range(2):
                customer = rng.choice(world.customers)
                lines = [DmsLine("A", *ROUTINE[rng.randrange(2)], "approved")]
                for code, item in zip(
                    "BC", rng.sample(DECLINABLE, rng.choice([0, 1, 1, 2])), strict=False
                ):
                    lines.append(DmsLine(code, *item, "declined"))
                _plan_visit(world, slug, day, customer, lines)
                declined = [ln for ln in lines if ln.status == "declined"]
                if declined and rng.random() < 0.35 and offset < days - 8:
                    # Comes back for (some of) it, sometimes at the other store.
                    back_day = day + timedelta(days=rng.randint(4, 14))
                    back_slug = (
                        slug if rng.random() < 0.7 else next(s for s in ADVISORS if s != slug)
                    )
                    won = declined[: rng.randint(1, len(declined))]
                    back_lines = [DmsLine("A", *ROUTINE[0], "approved")] + [
                        DmsLine(
                            code, ln.op_code, ln.description, ln.amount_cents - 1000, "approved"
                        )
                        for code, ln in zip("BC", won, strict=False)
                    ]
                    if back_day.weekday() != 6:
                        _plan_visit(world, back_slug, back_day, customer, back_lines)


def _reply(
    database: Database, rooftop: Rooftop, to_number: str, body: str, sid: str, at: datetime
) -> None:
    form = {"MessageSid": sid, "From": to_number, "To": rooftop.sms_from or "", "Body": body}
    with database.transaction() as session:
        receive_message(session, form=form, now=at)


def simulate(
    database: Database, *, seed: int = 7, days: int = DAYS, tick_hours: int = 1
) -> dict[str, int]:
    """Run the month, one worker tick every `tick_hours`; returns counts of what happened."""
    rng = random.Random(seed)
    load_dealer(database)
    customers, vehicles = _people(rng)
    world = World(rng=rng, customers=customers, vehicles=vehicles)
    seed_month(world, days)
    gateway = RecordingGateway()
    hooks = [*change_hooks(), on_promised_change]
    counts: dict[str, int] = defaultdict(int)
    replied: set[int] = set()
    tick = START.astimezone(UTC)
    end = tick + timedelta(days=days)
    while tick < end:
        with time_machine.travel(tick, tick=False):
            for hour in range(tick_hours):
                for action in world.events.pop(tick - timedelta(hours=hour), []):
                    action()
            _poll(database, world, hooks, tick)
            counts["followups_queued"] += run_followups(database, clock=utcnow)
            counts["watchdog_actions"] += run_watchdog(database, clock=utcnow)
            result = dispatch_due(
                database,
                gateway=gateway,
                public_url="http://127.0.0.1:8000",
                worker_id="sim",
                clock=utcnow,
                batch_size=500,
                concurrency=1,
            )
            counts["sent"] += result.sent
            counts["suppressed"] += result.suppressed
            _customer_replies(database, rng, tick, replied, counts)
        tick += timedelta(hours=tick_hours)
    counts["gateway_messages"] = len(gateway.sent)
    return dict(counts)


def _poll(database: Database, world: World, hooks: list, tick: datetime) -> None:  # type: ignore[type-arg]
    with database.transaction() as session:
        rooftops = {r.slug: r for r in session.scalars(select(Rooftop))}
        # The REST bridge answers `updated_since`: only ROs that changed since the last poll.
        for slug, number in sorted(world.dirty):
            record = world.records[(slug, number)]
            apply_record(session, rooftop=rooftops[slug], record=record, hooks=hooks, at=tick)
    world.dirty.clear()


def _customer_replies(
    database: Database,
    rng: random.Random,
    tick: datetime,
    replied: set[int],
    counts: dict[str, int],
) -> None:
    """Some customers answer a follow-up within the hour: a question, a no, or STOP."""
    with database.transaction() as session:
        fresh = session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.kind == "followup",
                OutboundMessage.state.in_(("sent", "delivered")),
                OutboundMessage.sent_at == tick,
            )
        ).all()
        targets = [(m.id, m.rooftop_id, m.to_address) for m in fresh if m.id not in replied]
        rooftops = {r.id: r for r in session.scalars(select(Rooftop))}
    for message_id, rooftop_id, to_address in targets:
        replied.add(message_id)
        roll = rng.random()
        body = (
            "how much were the brakes again?"
            if roll < 0.2
            else "no thanks"
            if roll < 0.3
            else "STOP"
            if roll < 0.34
            else None
        )
        if body and to_address:
            counts[f"replies:{body.split()[0].lower()}"] += 1
            _reply(
                database,
                rooftops[rooftop_id],
                to_address,
                body,
                f"SMsim{message_id:028d}",
                tick + timedelta(minutes=20),
            )


def print_report(database: Database, *, since: date) -> DeclinedRecoveryReport:
    """Print the report and, for each total, the rows it is the sum of."""
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        report = declined_recovery(session, group=group, rooftops=list(group.rooftops), since=since)
        recoveries = {r.declined_line_id: r for r in session.scalars(select(Recovery))}
        touches = session.execute(
            select(
                FollowupTouch.plan_id,
                FollowupTouch.touch_no,
                FollowupTouch.state,
                OutboundMessage.state,
                OutboundMessage.provider_sid,
            ).join(
                OutboundMessage,
                OutboundMessage.id == FollowupTouch.outbound_message_id,
                isouter=True,
            )
        ).all()
        ros = {ro.id: ro.ro_number for ro in session.scalars(select(RepairOrder))}
        rec_lines = {
            ln.id: ros[ln.repair_order_id]
            for ln in session.scalars(
                select(RoLine).where(
                    RoLine.id.in_([r.recovering_line_id for r in recoveries.values()])
                )
            )
        }
    money = lambda c: f"${c / 100:,.2f}"  # noqa: E731
    print(
        f"\nDECLINED-RECOVERY REPORT  rooftops={report.rooftops} since={report.since} "
        f"window={report.recovery_window_days}d"
    )
    for name in (
        "declined_cents",
        "followed_up_cents",
        "recovered_cents",
        "recovered_after_followup_cents",
    ):
        print(f"  {name:32s} {getattr(report, name):>9d}  ({money(getattr(report, name))})")
    for title in ("by_rooftop", "by_advisor", "by_op_code", "by_touch", "by_month"):
        print(
            f"\n  {title:14s} {'declined':>9s} {'followed':>9s} {'recovered':>9s} "
            f"{'after_fu':>9s} lines"
        )
        for row in getattr(report, title):
            print(
                f"  {row.key:14s} {row.declined_cents:9d} {row.followed_up_cents:9d} "
                f"{row.recovered_cents:9d} {row.recovered_after_followup_cents:9d} "
                f"{row.line_count:5d}"
            )
    print(
        f"\nLINES ({len(report.lines)}): ro_line.id rooftop RO op_code declined plan touch "
        "recovered <- the recovery row it comes from"
    )
    for ln in report.lines:
        rec = recoveries.get(ln.line_id)
        trace = (
            (
                f"recovery#{rec.id}: line {rec.recovering_line_id} on "
                f"{rec_lines[rec.recovering_line_id]} ({ln.recovering_rooftop}) "
                f"touch={rec.preceding_touch_no} replied={rec.customer_replied}"
            )
            if rec
            else ""
        )
        print(
            f"  {ln.line_id:5d} {ln.rooftop:14s} {ln.ro_number:6s} {ln.op_code:7s} "
            f"{ln.declined_cents:7d} plan={ln.plan_id!s:4s} touch={ln.touch} "
            f"{ln.recovered_cents:7d} {trace}"
        )
    by_state: dict[str, int] = defaultdict(int)
    for _plan, _no, touch_state, message_state, _sid in touches:
        by_state[f"touch {touch_state} / message {message_state}"] += 1
    print("\nTOUCHES:", dict(sorted(by_state.items())))
    print(
        "CHECK: declined = sum(lines.declined_cents) =",
        sum(x.declined_cents for x in report.lines),
        "| recovered = sum(recovery.recovered_cents of listed lines) =",
        sum(recoveries[x.line_id].recovered_cents for x in report.lines if x.line_id in recoveries),
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file in a temp dir"
    )
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/simulated-month.db"
    upgrade_to_head(url)
    engine = make_engine(url)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    counts = simulate(database, seed=args.seed)
    print("SIMULATED MONTH", START.date(), "+", DAYS, "days;", url)
    print("  ", dict(sorted(counts.items())))
    print_report(database, since=START.date())


if __name__ == "__main__":
    main()
