"""A simulated month at Bayview Auto Group, then the declined-recovery report, traced to rows.

    .venv/bin/python -m scripts.simulate_month [--seed 7] [--database-url sqlite:///sim.db]
        [--visits-per-day 2] [--settle-days 0] [--holdout-percent 10]

Everything runs through the real code: DMS records are stored by
`apply_record` with the production change hooks (status texts, follow-ups, the
watchdog's promised-time hook), replies go through the inbound text service, the
worker's follow-up and watchdog jobs run every hour, and the real dispatcher sends
through a recording gateway (the only fake: the edge where Twilio would be), so
consent, quiet hours and the daily cap decide what a customer actually got. The
month spans the end of daylight-saving time (Nov 1 2026).

The follow-ups' effect is known here because it is set here (`ReturnRates`): when an
RO closes with a follow-up plan, its customer comes back for that plan's declined
work with one probability if the plan is followed up and another if it was held
out. Comebacks land 4 to 14 days after the close; `settle_days` keeps the clock
running after the last visit so that every one of them is seen.
scripts/simulate_holdout.py runs months of growing volume against that truth.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import threading
import tomllib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from sqlalchemy import select

from app.config import parse_dealer_config
from app.conversations.service import receive_message
from app.db import make_engine, make_session_factory, utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.followups.jobs import run_followups, run_watchdog
from app.followups.watchdog import on_promised_change
from app.messaging.dispatcher import dispatch_due
from app.messaging.models import OutboundMessage
from app.migrate import upgrade_to_head
from app.repair_orders.service import apply_record
from app.wiring import change_hooks
from integrations.twilio.base import OutgoingMessage, SentMessage
from scripts.month_report import print_report
from scripts.sim_world import (
    ADVISORS,
    CUSTOMERS_PER_DAILY_VISIT,
    DAYS,
    START,
    ReturnRates,
    World,
    comebacks,
    people,
    seed_month,
)

__all__ = ["ADVISORS", "DAYS", "START", "ReturnRates", "simulate"]

ROOT = Path(__file__).resolve().parent.parent


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


def load_dealer(database: Database, *, seed: int = 7, holdout_percent: int | None = None) -> None:
    """The sample dealer, with a fast sender (pacing is real-time; the month is not).

    The group's holdout key comes from the seed, so one seed draws the same plans every run.
    """
    data = tomllib.loads((ROOT / "config" / "sample-dealer.toml").read_text(encoding="utf-8"))
    for rooftop in data["rooftop"]:
        rooftop["send_rate_per_second"] = 1000
        rooftop["stage_alert_minutes"] = {"awaiting_approval": 120}
        if holdout_percent is not None:
            rooftop["followup_holdout_percent"] = holdout_percent
    config = parse_dealer_config(data, "sample-dealer.toml (simulation)")
    with database.transaction() as session:
        apply_dealer_config(session, config=config, source="simulation")
        group = session.scalars(select(DealerGroup)).one()
        group.holdout_key = hashlib.sha256(f"simulated-month:{seed}".encode()).hexdigest()


def _reply(
    database: Database, rooftop: Rooftop, to_number: str, body: str, sid: str, at: datetime
) -> None:
    form = {"MessageSid": sid, "From": to_number, "To": rooftop.sms_from or "", "Body": body}
    with database.transaction() as session:
        receive_message(session, form=form, now=at)


def simulate(
    database: Database,
    *,
    seed: int = 7,
    days: int = DAYS,
    tick_hours: int = 1,
    visits_per_day: int = 2,
    settle_days: int = 0,
    holdout_percent: int | None = None,
    rates: ReturnRates = ReturnRates(),
) -> dict[str, int]:
    """Run the month, one worker tick every `tick_hours`; returns counts of what happened.

    Visits fill the first `days - 3` days; the clock then runs to `days + settle_days`.
    """
    rng = random.Random(seed)
    comeback_rng = random.Random(f"comebacks:{seed}")
    load_dealer(database, seed=seed, holdout_percent=holdout_percent)
    customers, vehicles = people(rng, CUSTOMERS_PER_DAILY_VISIT * visits_per_day)
    world = World(rng=rng, customers=customers, vehicles=vehicles)
    seed_month(world, days, visits_per_day)
    gateway = RecordingGateway()
    hooks = [*change_hooks(), on_promised_change]
    counts: dict[str, int] = defaultdict(int)
    replied: set[int] = set()
    tick = START.astimezone(UTC)
    end = tick + timedelta(days=days + settle_days)
    while tick < end:
        with time_machine.travel(tick, tick=False):
            for action in world.due(world.events, tick, tick_hours):
                action()
            _poll(database, world, hooks, tick)
            comebacks(
                database,
                world,
                world.due(world.closings, tick, tick_hours),
                rng=comeback_rng,
                rates=rates,
            )
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


def _poll(database: Database, world: World, hooks: list[Any], tick: datetime) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--visits-per-day", type=int, default=2, help="per rooftop")
    parser.add_argument("--settle-days", type=int, default=0, help="clock runs on after the month")
    parser.add_argument("--holdout-percent", type=int, default=None, help="default: the sample's")
    parser.add_argument(
        "--database-url", default=None, help="default: a fresh SQLite file in a temp dir"
    )
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/simulated-month.db"
    upgrade_to_head(url)
    engine = make_engine(url)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    counts = simulate(
        database,
        seed=args.seed,
        visits_per_day=args.visits_per_day,
        settle_days=args.settle_days,
        holdout_percent=args.holdout_percent,
    )
    print("SIMULATED MONTH", START.date(), "+", DAYS, "days;", url)
    print("  ", dict(sorted(counts.items())))
    print_report(database, since=START.date())


if __name__ == "__main__":
    main()
