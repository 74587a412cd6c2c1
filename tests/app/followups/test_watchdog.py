"""The promise-time watchdog: late cars, new promised times, ROs stuck in a stage."""

from __future__ import annotations

from datetime import datetime, timedelta

import time_machine
from sqlalchemy import select

from app.conversations.models import Task
from app.db import utcnow
from app.deps import Database
from app.followups.jobs import run_watchdog
from app.messaging.models import OutboundMessage
from tests.app.followups.shop import Line, Shop
from tests.app.followups.test_plans import LA, NY, at

OIL = Line("A", "OILCHG", "Oil and filter", 8995, "approved")


def tick(shop: Shop, database: Database, when: datetime) -> int:
    shop.session.commit()
    with time_machine.travel(when, tick=False):
        return run_watchdog(database, clock=utcnow)


def tasks(shop: Shop, kind: str) -> list[Task]:
    shop.session.expire_all()
    return list(shop.session.scalars(select(Task).where(Task.kind == kind).order_by(Task.id)))


def outbox(shop: Shop) -> list[OutboundMessage]:
    shop.session.expire_all()
    return list(shop.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def in_repair(shop: Shop, slug: str = "bayview-toyota", *, opened: datetime, promised: datetime):  # type: ignore[no-untyped-def]
    customer = shop.customer("Sam", "Lee", "+14155550142")
    vehicle = shop.vehicle(customer, "JTMW1RFV5MD012345")
    return shop.open_ro(
        slug,
        "R1001",
        customer=customer,
        vehicle=vehicle,
        at=opened,
        lines=(OIL,),
        stage="in_repair",
        promised_at=promised,
    )


def test_late_car_gets_one_message_and_one_advisor_task(shop: Shop, dealer: Database) -> None:
    promised = at(LA, 2026, 11, 2, 16)
    ro = in_repair(shop, opened=at(LA, 2026, 11, 2, 8), promised=promised)
    assert tick(shop, dealer, promised - timedelta(minutes=31)) == 0  # margin is 30 min
    assert tick(shop, dealer, promised - timedelta(minutes=29)) == 1
    assert tick(shop, dealer, promised - timedelta(minutes=10)) == 0
    assert tick(shop, dealer, promised + timedelta(hours=2)) == 0
    [message] = outbox(shop)
    assert message.dedupe_key == f"ro:{ro.id}:late:{promised.isoformat()}"
    assert (message.kind, message.purpose) == ("watchdog", "status")
    assert "taking longer than we promised" in (message.body or "")
    [task] = tasks(shop, "promise_late")
    assert "new promised time" in task.summary and task.advisor_ref == "A7"
    assert "4:00 PM" in task.summary  # the rooftop's wall clock, not UTC


def test_a_car_that_is_ready_is_not_late(shop: Shop, dealer: Database) -> None:
    promised = at(LA, 2026, 11, 2, 16)
    ro = in_repair(shop, opened=at(LA, 2026, 11, 2, 8), promised=promised)
    shop.move(ro, "ready_for_pickup", at=promised - timedelta(hours=1))
    assert tick(shop, dealer, promised) == 0
    assert outbox(shop) == []


def test_the_late_task_closes_when_the_car_is_ready(shop: Shop, dealer: Database) -> None:
    """The task asking for a new promised time asks for nothing once the car is ready."""
    promised = at(LA, 2026, 11, 2, 16)
    ro = in_repair(shop, opened=at(LA, 2026, 11, 2, 8), promised=promised)
    assert tick(shop, dealer, promised - timedelta(minutes=29)) == 1
    [task] = tasks(shop, "promise_late")
    assert task.state == "open"
    shop.move(ro, "ready_for_pickup", at=promised + timedelta(minutes=20))
    shop.session.commit()
    [task] = tasks(shop, "promise_late")
    assert task.state == "done"


def test_a_new_promised_time_is_told_once_and_watched_again(shop: Shop, dealer: Database) -> None:
    first = at(NY, 2026, 11, 2, 12)
    ro = in_repair(shop, "harbor-honda", opened=at(NY, 2026, 11, 2, 8), promised=first)
    assert tick(shop, dealer, first - timedelta(minutes=40)) == 1  # margin 45 min here
    later = at(NY, 2026, 11, 2, 17, 30)
    shop.promise(ro, later, at=first - timedelta(minutes=20))
    shop.promise(ro, later, at=first - timedelta(minutes=19))  # the poller re-reads an overlap
    messages = outbox(shop)
    assert [m.dedupe_key for m in messages] == [
        f"ro:{ro.id}:late:{first.isoformat()}",
        f"ro:{ro.id}:promised:{later.isoformat()}",
    ]
    assert "5:30 PM" in (messages[1].body or "")  # Eastern wall clock
    assert [t.state for t in tasks(shop, "promise_late")] == ["done"]
    # The new promise is watched on its own: late again means one more message and task.
    assert tick(shop, dealer, later - timedelta(minutes=30)) == 1
    assert tick(shop, dealer, later - timedelta(minutes=29)) == 0
    assert len(outbox(shop)) == 3 and len(tasks(shop, "promise_late")) == 2


def test_a_first_promised_time_or_a_past_one_is_not_announced(shop: Shop, dealer: Database) -> None:
    ro = in_repair(shop, opened=at(LA, 2026, 11, 2, 8), promised=None)  # type: ignore[arg-type]
    shop.promise(ro, at(LA, 2026, 11, 2, 17), at=at(LA, 2026, 11, 2, 9))
    shop.promise(ro, at(LA, 2026, 11, 2, 8, 30), at=at(LA, 2026, 11, 2, 9, 5))
    assert outbox(shop) == []


def test_stuck_in_approval_tasks_the_advisor_once_per_stage_entry(
    shop: Shop, dealer: Database
) -> None:
    entered = at(LA, 2026, 11, 2, 9, 40)
    ro = in_repair(shop, opened=at(LA, 2026, 11, 2, 8), promised=at(LA, 2026, 11, 3, 17))
    shop.move(ro, "awaiting_approval", at=entered)
    assert tick(shop, dealer, entered + timedelta(minutes=119)) == 0
    assert tick(shop, dealer, entered + timedelta(minutes=121)) == 1
    assert tick(shop, dealer, entered + timedelta(minutes=500)) == 0
    [task] = tasks(shop, "stuck_stage")
    assert "waiting on customer approval" in task.summary and "2 h 01 min" in task.summary
    assert outbox(shop) == []  # the customer is not nudged
    # Approved, then a second approval question: a new stage entry, a new task.
    shop.move(ro, "in_repair", at=entered + timedelta(hours=9))
    shop.move(ro, "awaiting_approval", at=entered + timedelta(hours=10))
    assert tick(shop, dealer, entered + timedelta(hours=12, minutes=1)) == 1
    assert len(tasks(shop, "stuck_stage")) == 2


def test_stage_thresholds_come_from_the_rooftop(shop: Shop, dealer: Database) -> None:
    ro = in_repair(
        shop, "harbor-honda", opened=at(NY, 2026, 11, 2, 8), promised=at(NY, 2026, 11, 5, 17)
    )
    shop.move(ro, "awaiting_parts", at=at(NY, 2026, 11, 2, 9))
    assert tick(shop, dealer, at(NY, 2026, 11, 2, 12, 59)) == 0
    assert tick(shop, dealer, at(NY, 2026, 11, 2, 13, 0)) == 1
    assert "waiting on parts" in tasks(shop, "stuck_stage")[0].summary
