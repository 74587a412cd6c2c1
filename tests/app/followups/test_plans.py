"""Declined-work follow-up plans: made at close, one message per touch, stopped when done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.deps import Database
from app.followups.jobs import run_followups
from app.followups.models import FollowupPlan, FollowupTouch
from app.followups.service import stop_plans_for_customer
from app.messaging.models import OutboundMessage
from tests.app.followups.shop import Line, Shop

LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")

OIL = Line("A", "OILCHG", "Oil and filter", 8995, "approved")
BRAKES = Line("B", "BRKPAD", "Front brake pads", 41200, "declined")
WIPERS = Line("C", "WIPER", "Wiper blades", 4500, "pending")


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def closed_ro(shop: Shop, number: str = "R1001", slug: str = "bayview-toyota", **kw: object):  # type: ignore[no-untyped-def]
    customer = kw.pop("customer", None) or shop.customer("Sam", "Lee", "+14155550142")
    vehicle = kw.pop("vehicle", None) or shop.vehicle(customer, "JTMW1RFV5MD012345")  # type: ignore[arg-type]
    opened = kw.pop("opened", at(LA, 2026, 10, 29, 8))
    closed = kw.pop("closed", at(LA, 2026, 10, 29, 10))
    lines = kw.pop("lines", (OIL, BRAKES, WIPERS))
    ro = shop.open_ro(slug, number, customer=customer, vehicle=vehicle, at=opened, lines=lines)  # type: ignore[arg-type]
    shop.close(ro, at=closed)  # type: ignore[arg-type]
    return ro, customer, vehicle


def touches(session: Session, plan_id: int) -> list[FollowupTouch]:
    return list(
        session.scalars(
            select(FollowupTouch)
            .where(FollowupTouch.plan_id == plan_id)
            .order_by(FollowupTouch.touch_no)
        )
    )


def messages(session: Session) -> list[OutboundMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def run_at(shop: Shop, database: Database, when: datetime) -> int:
    """One worker tick at `when`; the test's own session lets go of SQLite's write lock first."""
    shop.session.commit()
    with time_machine.travel(when, tick=False):
        return run_followups(database, clock=utcnow)


def test_close_plans_touches_on_the_rooftops_wall_clock_across_the_dst_change(shop: Shop) -> None:
    ro, _, _ = closed_ro(shop)  # closed Thu Oct 29 2026 10:00 PDT; DST ends Sun Nov 1
    plan = shop.session.scalars(select(FollowupPlan)).one()
    due = [t.due_at for t in touches(shop.session, plan.id)]
    assert due == [at(LA, 2026, 11, 1, 10), at(LA, 2026, 11, 8, 10), at(LA, 2026, 11, 28, 10)]
    assert due[0] - ro.closed_at == timedelta(days=3, hours=1)  # the fall-back hour
    assert plan.customer_id == ro.customer_id and plan.state == "active"


def test_day_zero_means_at_close_in_another_time_zone(shop: Shop) -> None:
    closed_ro(
        shop, slug="harbor-honda", opened=at(NY, 2026, 10, 31, 9), closed=at(NY, 2026, 10, 31, 16)
    )
    plan = shop.session.scalars(select(FollowupPlan)).one()
    due = [t.due_at for t in touches(shop.session, plan.id)]
    assert due == [at(NY, 2026, 10, 31, 16), at(NY, 2026, 11, 3, 16)]
    assert due[0].hour == 20 and due[1].hour == 21  # EDT then EST


def test_no_plan_without_declined_lines_or_customer(shop: Shop) -> None:
    closed_ro(shop, lines=(OIL,))
    walk_in = shop.open_ro(
        "bayview-toyota", "R2", customer=None, vehicle=None, at=utcnow(), lines=(BRAKES,)
    )
    shop.close(walk_in, at=utcnow())
    assert shop.session.scalar(select(func.count(FollowupPlan.id))) == 0


def test_one_message_per_touch_names_every_open_line_and_the_total(
    shop: Shop, dealer: Database
) -> None:
    closed_ro(shop)
    shop.session.commit()
    assert run_at(shop, dealer, at(LA, 2026, 11, 1, 9, 59)) == 0
    assert run_at(shop, dealer, at(LA, 2026, 11, 1, 10, 0)) == 1
    assert run_at(shop, dealer, at(LA, 2026, 11, 1, 10, 5)) == 0  # a second tick repeats nothing
    [message] = messages(shop.session)
    plan = shop.session.scalars(select(FollowupPlan)).one()
    assert message.dedupe_key == f"followup:{plan.id}:touch:1"
    assert (message.kind, message.purpose, message.to_address) == (
        "followup",
        "marketing",
        "+14155550142",
    )
    assert "Front brake pads" in (message.body or "") and "Wiper blades" in (message.body or "")
    assert "Oil and filter" not in (message.body or "")
    assert "$457.00" in (message.body or "") and "2021 Toyota RAV4" in (message.body or "")
    assert "Reply YES" in (message.body or "") and "(415) 555-0199" in (message.body or "")
    assert message.expires_at is not None and message.expires_at > message.not_before


def test_no_touch_after_the_work_is_approved_on_a_later_ro(shop: Shop, dealer: Database) -> None:
    _, customer, vehicle = closed_ro(shop)
    shop.session.commit()
    assert run_at(shop, dealer, at(LA, 2026, 11, 1, 10)) == 1
    shop.mark_sent(at(LA, 2026, 11, 1, 10, 1))
    # Brakes come back at the Ford store; wipers stay open: touch 2 names only wipers.
    back = shop.open_ro(
        "bayview-ford",
        "F1",
        customer=customer,
        vehicle=vehicle,
        at=at(LA, 2026, 11, 5, 8),
        lines=(Line("A", "BRKPAD", "Brake pads", 39900, "approved"),),
    )
    shop.close(back, at=at(LA, 2026, 11, 5, 12))
    shop.session.commit()
    assert run_at(shop, dealer, at(LA, 2026, 11, 8, 10)) == 1
    second = messages(shop.session)[-1]
    assert "Wiper blades" in (second.body or "") and "brake" not in (second.body or "").lower()
    assert "$45.00" in (second.body or "")
    # Then the wipers are done too: the plan stops and touch 3 never goes.
    again = shop.open_ro(
        "bayview-toyota",
        "R9",
        customer=customer,
        vehicle=vehicle,
        at=at(LA, 2026, 11, 12, 8),
        lines=(Line("A", "WIPER", "Wipers", 4500, "completed"),),
    )
    shop.session.commit()
    plan = shop.session.scalars(select(FollowupPlan)).one()
    shop.session.refresh(plan)
    assert (plan.state, plan.stopped_reason) == ("stopped", "work approved")
    assert run_at(shop, dealer, at(LA, 2026, 11, 28, 10)) == 0
    assert len(messages(shop.session)) == 2
    third = touches(shop.session, plan.id)[2]
    assert third.state == "canceled" and "work approved" in (third.canceled_reason or "")
    assert again.id


def test_a_line_already_followed_up_from_an_earlier_ro_is_not_followed_up_twice(shop: Shop) -> None:
    _, customer, vehicle = closed_ro(shop, lines=(BRAKES,))
    closed_ro(
        shop,
        "R1002",
        customer=customer,
        vehicle=vehicle,
        lines=(BRAKES, WIPERS),
        opened=at(LA, 2026, 11, 20, 8),
        closed=at(LA, 2026, 11, 20, 11),
    )
    closed_ro(
        shop,
        "R1003",
        customer=customer,
        vehicle=vehicle,
        lines=(BRAKES,),
        opened=at(LA, 2026, 12, 1, 8),
        closed=at(LA, 2026, 12, 1, 11),
    )
    plans = shop.session.scalars(select(FollowupPlan).order_by(FollowupPlan.id)).all()
    assert len(plans) == 2  # R1003 has nothing new to ask about
    from app.followups.service import plan_lines

    assert [ln.op_code for ln in plan_lines(shop.session, plans[0])] == ["BRKPAD"]
    assert [ln.op_code for ln in plan_lines(shop.session, plans[1])] == ["WIPER"]


def test_restarts_and_missed_ticks_neither_miss_nor_repeat_a_touch(
    shop: Shop, dealer: Database
) -> None:
    closed_ro(shop)  # touches Nov 1, Nov 8, Nov 28 at 10:00
    shop.session.commit()
    start = at(LA, 2026, 10, 29, 12)
    # Hourly ticks, twice each, with the worker down Oct 31 18:00 .. Nov 2 07:00 (touch 1 due
    # inside the outage, 21 h late: still sent once) and Nov 7 .. Nov 12 (touch 2 is 4 days late:
    # stale, canceled with a reason rather than sent out of the blue).
    down = [
        (at(LA, 2026, 10, 31, 18), at(LA, 2026, 11, 2, 7)),
        (at(LA, 2026, 11, 7), at(LA, 2026, 11, 12)),
    ]
    tick, sent = start, 0
    while tick < at(LA, 2026, 12, 2):
        if not any(a <= tick < b for a, b in down):
            sent += run_at(shop, dealer, tick) + run_at(shop, dealer, tick)
        tick += timedelta(hours=7)
    assert sent == 2
    plan = shop.session.scalars(select(FollowupPlan)).one()
    shop.session.refresh(plan)
    rows = touches(shop.session, plan.id)
    assert [t.state for t in rows] == ["queued", "canceled", "queued"]
    assert rows[0].queued_at is not None and rows[0].queued_at < at(LA, 2026, 11, 2, 14, 1)
    assert (rows[1].canceled_reason or "").startswith("stale")
    assert (plan.state, plan.stopped_reason) == ("done", "cadence ended")
    keys = [m.dedupe_key for m in messages(shop.session)]
    assert keys == [f"followup:{plan.id}:touch:1", f"followup:{plan.id}:touch:3"]


def test_two_touches_due_at_once_send_only_the_latest(shop: Shop, dealer: Database) -> None:
    closed_ro(
        shop, slug="harbor-honda", opened=at(NY, 2026, 3, 5, 9), closed=at(NY, 2026, 3, 5, 16)
    )
    shop.session.commit()
    # Worker down from close until a day after touch 2 (DST starts Mar 8 in between).
    assert run_at(shop, dealer, at(NY, 2026, 3, 9, 10)) == 1
    plan = shop.session.scalars(select(FollowupPlan)).one()
    rows = touches(shop.session, plan.id)
    assert rows[1].due_at == at(NY, 2026, 3, 8, 16) and rows[1].due_at.hour == 20  # EDT
    assert [t.state for t in rows] == ["canceled", "queued"]
    assert "superseded" in (rows[0].canceled_reason or "")


def test_no_or_stop_stops_the_plan_and_its_waiting_message(shop: Shop, dealer: Database) -> None:
    _, customer, _ = closed_ro(shop)
    shop.session.commit()
    assert (
        run_at(shop, dealer, at(LA, 2026, 11, 1, 10)) == 1
    )  # queued, not yet sent (say, quiet hours)
    stopped = stop_plans_for_customer(
        shop.session,
        customer_id=customer.id,
        reason="customer replied no",
        at=at(LA, 2026, 11, 1, 10, 2),
    )
    shop.session.commit()
    assert stopped == 1
    assert [m.state for m in messages(shop.session)] == ["canceled"]
    assert run_at(shop, dealer, at(LA, 2026, 11, 30)) == 0
    plan = shop.session.scalars(select(FollowupPlan)).one()
    shop.session.refresh(plan)
    assert (plan.state, plan.stopped_reason) == ("stopped", "customer replied no")
    assert [t.state for t in touches(shop.session, plan.id)] == ["queued", "canceled", "canceled"]
    assert (
        stop_plans_for_customer(shop.session, customer_id=customer.id, reason="STOP", at=utcnow())
        == 0
    )


def test_a_customer_without_a_textable_phone_gets_no_touch(shop: Shop, dealer: Database) -> None:
    customer = shop.customer("Ana", "Diaz", None)
    closed_ro(shop, customer=customer)
    shop.session.commit()
    assert run_at(shop, dealer, at(LA, 2026, 11, 1, 10)) == 0
    plan = shop.session.scalars(select(FollowupPlan)).one()
    assert touches(shop.session, plan.id)[0].canceled_reason == "the customer has no textable phone"


def test_a_booked_line_is_not_asked_about_while_its_ro_is_open(
    shop: Shop, dealer: Database
) -> None:
    _, customer, vehicle = closed_ro(shop, lines=(BRAKES,))
    shop.open_ro(
        "bayview-toyota",
        "R2",
        customer=customer,
        vehicle=vehicle,
        at=at(LA, 2026, 10, 31, 8),
        lines=(Line("A", "BRKPAD", "Front brake pads", 41200, "pending"),),
    )
    shop.session.commit()
    assert run_at(shop, dealer, at(LA, 2026, 11, 1, 10)) == 0
    plan = shop.session.scalars(select(FollowupPlan)).one()
    assert "booked" in (touches(shop.session, plan.id)[0].canceled_reason or "")
    assert plan.state == "active"  # if the booking falls through, touch 2 still asks
