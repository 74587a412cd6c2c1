"""`pitwall demo`: its dealer, its store hours, and ten minutes of it on a driven clock.

The worker runs exactly as in the demo (simulator DMS on the live timeline, the
sandbox over real HTTP), but its clock is moved by the test instead of waited for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.config import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, Settings, parse_dealer_config
from app.conversations.models import Call, InboundMessage
from app.customers.carrier import keyword_mode
from app.dealers.models import DealerGroup, Rooftop
from app.demo import OPEN_ALL_DAY, demo_config_data, demo_stores, prepare_demo
from app.demo_customers import DemoCustomers
from app.deps import Database
from app.followups.models import FollowupTouch, Recovery
from app.main import create_app
from app.messaging.models import OutboundMessage
from app.repair_orders.jobs import AdapterCache
from app.repair_orders.models import RepairOrder
from app.reports.service import declined_recovery
from app.wiring import build_gateway, change_hooks
from app.worker import Worker
from integrations.local_server import LocalServer
from integrations.twilio.sandbox import SandboxConfig, SandboxServer

# Sunday 6 Dec 2026, 1:54 AM in Los Angeles: the hour the customer wrote at.
START = datetime(2026, 12, 6, 9, 54, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_demo_store_is_open_around_the_clock_and_the_other_closed_for_holidays() -> None:
    config = parse_dealer_config(demo_config_data(now=START), "demo")
    toyota, ford = config.rooftop
    assert toyota.store_hours == OPEN_ALL_DAY
    for hour in range(0, 24, 3):
        assert toyota.hours.is_open(START + timedelta(hours=hour))
        assert not ford.hours.is_open(START + timedelta(hours=hour))
    assert ford.holidays == [date(2026, 12, 6), date(2026, 12, 7)]
    # Sunday, then a Monday holiday: the next opening skips it, Tuesday 7:00 PST.
    assert ford.hours.next_opening(START) == datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
    assert all(r.dms.adapter_settings()["live"] for r in config.rooftop)
    assert all(r.followup_days[0] == 0 for r in config.rooftop)
    # Promises are minutes away: only a missed one is "running late".
    assert all(r.promise_margin_minutes == 0 for r in config.rooftop)


def test_the_demo_shows_both_of_twilios_keyword_behaviours() -> None:
    """Toyota's number is a plain long code, Ford's sits behind Advanced Opt-Out."""
    toyota, ford = parse_dealer_config(demo_config_data(now=START), "demo").rooftop
    assert (keyword_mode(toyota), keyword_mode(ford)) == ("standard", "advanced")


class _Late:
    """An ASGI app set after its server has a port (the app's settings need the URL)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture
def served(database: Database, settings: Settings) -> Iterator[tuple[Settings, SandboxServer]]:
    """The web app (for the sandbox's status callbacks) and the sandbox, over real HTTP."""
    late = _Late()
    web = LocalServer(late, name="pitwall-demo-test").start()
    sandbox = SandboxServer(
        SandboxConfig(
            account_sid=DEMO_ACCOUNT_SID,
            auth_token=DEMO_AUTH_TOKEN,
            pitwall_public_url=web.url,
            phone_numbers=("+14155550100", "+14155550101", "+14155550200"),
        )
    ).start()
    demo_settings = settings.model_copy(
        update={
            "public_url": web.url,
            "twilio_api_url": sandbox.url,
            "twilio_account_sid": DEMO_ACCOUNT_SID,
            "twilio_auth_token": DEMO_AUTH_TOKEN,
            "demo": True,
        }
    )
    late.app = create_app(demo_settings, database=database)
    yield demo_settings, sandbox
    sandbox.stop()
    web.stop()


def test_ten_demo_minutes_bring_new_ros_follow_ups_and_recovered_work(
    database: Database, served: tuple[Settings, SandboxServer]
) -> None:
    demo_settings, _ = served
    prepare_demo(database)
    clock = Clock(START)
    worker = _worker(database, demo_settings, clock)
    counts: list[int] = []
    try:
        for _ in range(40):  # ten real minutes, a worker pass every 15 s
            clock.now += timedelta(seconds=15)
            worker.run_once()
            with database.transaction() as session:
                counts.append(session.scalar(select(func.count(RepairOrder.id))) or 0)
    finally:
        worker.close()
    # New ROs keep arriving through the ten minutes, and a second shop day has begun.
    assert counts[10] < counts[20] < counts[39]
    with database.transaction() as session:
        numbers = set(session.scalars(select(RepairOrder.ro_number)))
        assert "R20081" in numbers or "R30061" in numbers  # the first RO of day 2
        # Every RO's times are on the real clock: nothing from the future.
        latest = session.scalar(select(func.max(RepairOrder.opened_at)))
        assert latest is not None and latest <= clock.now
        touches = session.scalars(select(FollowupTouch).where(FollowupTouch.touch_no == 1)).all()
        sent_followups = session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.kind == "followup", OutboundMessage.state.in_(("sent", "delivered"))
            )
        ).all()
        recoveries = session.scalars(select(Recovery)).all()
        assert touches and sent_followups, "declined work is followed up at the close"
        assert recoveries, "customers came back for declined work"
        assert any(r.preceding_touch_no for r in recoveries), "one came back after a follow-up"
        # Only ROs that really miss their promise are "running late" (the sim makes ~20% late).
        late = session.scalar(
            select(func.count(OutboundMessage.id)).where(OutboundMessage.template == "running_late")
        )
        assert late is not None and 0 < late < 0.4 * len(numbers)
        group = session.scalars(select(DealerGroup)).one()
        report = declined_recovery(
            session,
            group=group,
            rooftops=list(session.scalars(select(Rooftop))),
            since=START.date() - timedelta(days=1),
        )
        assert report.declined_cents > 0
        assert report.followed_up_cents > 0
        assert report.recovered_cents > 0


def _worker(database: Database, demo_settings: Settings, clock: Clock) -> Worker:
    return Worker(
        database,
        public_url=demo_settings.public_url,
        gateway=build_gateway(demo_settings),
        adapters=AdapterCache(clock=clock),
        hooks=change_hooks(),
        clock=clock,
    )


def test_the_demo_customers_text_call_approve_and_opt_out_on_their_own(
    database: Database, served: tuple[Settings, SandboxServer]
) -> None:
    demo_settings, sandbox = served
    prepare_demo(database)
    clock = Clock(datetime.now(UTC))  # webhooks are answered on the real clock
    worker = _worker(database, demo_settings, clock)
    customers = DemoCustomers(sandbox.url, demo_stores())
    done: list[str | None] = []
    try:
        for _ in range(20):  # five minutes of shop: texts on the phones
            clock.now += timedelta(seconds=15)
            worker.run_once()
        done = [action() for action in customers.actions]
        done.append(customers.opt_out_or_back_in())  # and back in
        worker.run_once()
    finally:
        worker.close()
        customers.stop()
    assert all(done), done
    with database.transaction() as session:
        calls = {(c.rooftop_id, c.outcome) for c in session.scalars(select(Call)).all()}
        toyota, ford = (
            session.scalars(select(Rooftop).where(Rooftop.slug == slug)).one().id
            for slug in ("bayview-toyota", "bayview-ford")
        )
        assert (toyota, "missed") in calls
        assert (toyota, "status_only") in calls  # told the status by the menu, no one needed
        assert (ford, "after_hours") in calls
        intents = [m.intent for m in session.scalars(select(InboundMessage)).all()]
        assert intents.count("status_question") >= 2  # English and Spanish, answered
        assert {"opt_out", "opt_in"} <= set(intents)
        textbacks = session.scalars(
            select(OutboundMessage).where(OutboundMessage.kind == "textback")
        ).all()
        assert len(textbacks) == 2
