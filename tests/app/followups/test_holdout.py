"""The follow-up holdout: a keyed draw per RO, recorded on the plan; held-out plans send nothing."""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.config import parse_dealer_config
from app.conversations.service import receive_message
from app.customers.models import Customer, CustomerPhone, Phone
from app.db import utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.followups.holdout import HELD_OUT, draw, group_key, is_held_out
from app.followups.jobs import run_followups
from app.followups.models import FollowupPlan, Recovery
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoLine, Vehicle
from tests.app.followups.conftest import DEALER_TOML
from tests.app.followups.shop import Line, Shop
from tests.app.followups.test_plans import LA, OIL, at, closed_ro, touches
from tests.support import load_sample_dealer

KEY = "a" * 64
BRAKES = Line("B", "BRKPAD", "Front brake pads", 41200, "declined")
TOYOTA = "bayview-toyota"


def with_percent(toml: str, slug: str, percent: int) -> str:
    """The dealer file with one rooftop's followup_holdout_percent changed."""
    blocks = toml.split("[[rooftop]]")
    for n, block in enumerate(blocks):
        if f'slug = "{slug}"' in block:
            blocks[n] = re.sub(
                r"followup_holdout_percent = \d+", f"followup_holdout_percent = {percent}", block
            )
    return "[[rooftop]]".join(blocks)


def load(database: Database, tmp_path: Path, toml: str) -> None:
    path = tmp_path / "dealer.toml"
    path.write_text(toml, encoding="utf-8")
    load_sample_dealer(database, path)


def ro_numbers(held: bool, percent: int, *, key: str = KEY, slug: str = TOYOTA) -> Iterator[str]:
    """RO numbers that the draw under `key` puts in (or keeps out of) the holdout."""
    for n in range(1000, 100000):
        number = f"R{n}"
        if is_held_out(key=key, rooftop_slug=slug, ro_number=number, percent=percent) is held:
            yield number


@pytest.fixture
def half_held(dealer: Database, tmp_path: Path) -> Database:
    """Bayview Toyota holds half its plans out; the group's key is known to the test."""
    load(dealer, tmp_path, with_percent(DEALER_TOML, TOYOTA, 50))
    with dealer.transaction() as session:
        session.scalars(select(DealerGroup)).one().holdout_key = KEY
    return dealer


def run_at(shop: Shop, database: Database, when: datetime) -> int:
    shop.session.commit()
    with time_machine.travel(when, tick=False):
        return run_followups(database, clock=utcnow)


def followup_messages(session: Session) -> list[OutboundMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "followup")))


def plan_of(session: Session, ro: RepairOrder) -> FollowupPlan:
    session.expire_all()
    return session.scalars(select(FollowupPlan).where(FollowupPlan.repair_order_id == ro.id)).one()


def test_the_draw_is_keyed_deterministic_and_holds_out_about_the_percent() -> None:
    numbers = [f"R{n}" for n in range(20000)]
    first = [draw(key=KEY, rooftop_slug=TOYOTA, ro_number=n) for n in numbers]
    again = [draw(key=KEY, rooftop_slug=TOYOTA, ro_number=n) for n in numbers]
    other_key = [draw(key="b" * 64, rooftop_slug=TOYOTA, ro_number=n) for n in numbers]
    other_store = [draw(key=KEY, rooftop_slug="bayview-ford", ro_number=n) for n in numbers]
    assert first == again and all(0 <= u < 1 for u in first)
    assert first != other_key and first != other_store
    for percent in (10, 25, 50):
        held = sum(u * 100 < percent for u in first)
        expected = len(numbers) * percent / 100
        sd = (expected * (1 - percent / 100)) ** 0.5
        assert abs(held - expected) < 4 * sd, (percent, held)
    # Consecutive RO numbers are not held out in runs: the draw is not a pattern of the number.
    held_10 = [u < 0.10 for u in first]
    pairs = sum(a and b for a, b in itertools.pairwise(held_10))
    assert abs(pairs - len(numbers) * 0.01) < 4 * (len(numbers) * 0.01) ** 0.5
    assert not any(
        is_held_out(key=KEY, rooftop_slug=TOYOTA, ro_number=n, percent=0) for n in numbers
    )


def test_a_held_out_plan_is_recorded_and_sends_nothing_while_a_followed_one_sends(
    half_held: Database, shop: Shop
) -> None:
    held_ro, held_customer, _ = closed_ro(shop, next(ro_numbers(True, 50)), lines=(OIL, BRAKES))
    sam = shop.customer("Sam", "Ortiz", "+14155550143")
    followed_ro, _, _ = closed_ro(
        shop,
        next(ro_numbers(False, 50)),
        customer=sam,
        vehicle=shop.vehicle(sam, "1FTEW1EP5MFA00002"),
        lines=(OIL, BRAKES),
    )
    held, followed = plan_of(shop.session, held_ro), plan_of(shop.session, followed_ro)
    assert (held.holdout, held.holdout_percent) == (True, 50)
    assert (followed.holdout, followed.holdout_percent) == (False, 50)
    # Both plans get the same cadence; only the followed one queues a message per touch.
    assert len(touches(shop.session, held.id)) == len(touches(shop.session, followed.id)) == 3
    for day in (1, 8, 28):
        assert run_at(shop, half_held, at(LA, 2026, 11, day, 10)) == 1
        shop.mark_sent(at(LA, 2026, 11, day, 10, 1))
    sent = followup_messages(shop.session)
    assert [m.repair_order_id for m in sent] == [followed_ro.id] * 3
    assert all(m.customer_id != held_customer.id for m in sent)
    held_touches = touches(shop.session, held.id)
    assert [(t.state, t.canceled_reason) for t in held_touches] == [("canceled", HELD_OUT)] * 3
    assert [t.state for t in touches(shop.session, followed.id)] == ["queued"] * 3
    # The cadence ends the same way for both.
    assert (
        plan_of(shop.session, held_ro).state == plan_of(shop.session, followed_ro).state == "done"
    )


def test_a_held_out_plan_is_tracked_like_any_other_until_its_work_comes_back(
    half_held: Database, shop: Shop
) -> None:
    ro, customer, vehicle = closed_ro(shop, next(ro_numbers(True, 50)), lines=(OIL, BRAKES))
    assert run_at(shop, half_held, at(LA, 2026, 11, 1, 10)) == 0
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
    recovery = shop.session.scalars(select(Recovery)).one()
    brakes = next(line for line in ro.lines if line.op_code == "BRKPAD")
    assert (recovery.declined_line_id, recovery.recovered_cents) == (brakes.id, 41200)
    assert recovery.preceding_touch_no is None  # nothing was sent before it
    plan = plan_of(shop.session, ro)
    assert (plan.state, plan.stopped_reason, plan.holdout) == ("stopped", "work approved", True)
    assert [t.state for t in touches(shop.session, plan.id)] == ["canceled"] * 3


def test_changing_the_percent_moves_only_plans_made_afterwards(
    half_held: Database, shop: Shop, tmp_path: Path
) -> None:
    first, second = list(itertools.islice(ro_numbers(True, 50), 2))
    before, _, _ = closed_ro(shop, first, lines=(OIL, BRAKES))
    shop.session.commit()
    load(half_held, tmp_path, with_percent(DEALER_TOML, TOYOTA, 0))  # `config load` of a new file
    # An RO the old percent would have held out is followed now; the earlier plan keeps its draw.
    ana = shop.customer("Ana", "Diaz", "+14155550144")
    after, _, _ = closed_ro(
        shop,
        second,
        customer=ana,
        vehicle=shop.vehicle(ana, "1FTEW1EP5MFA00003"),
        lines=(OIL, BRAKES),
    )
    draws = {
        name: (plan.holdout, plan.holdout_percent)
        for name, plan in (
            ("before", plan_of(shop.session, before)),
            ("after", plan_of(shop.session, after)),
        )
    }
    assert draws == {"before": (True, 50), "after": (False, 0)}
    assert run_at(shop, half_held, at(LA, 2026, 11, 1, 10)) == 1
    assert [m.repair_order_id for m in followup_messages(shop.session)] == [after.id]
    # Raised again: still nothing moves for the plans already made.
    shop.session.commit()
    load(half_held, tmp_path, with_percent(DEALER_TOML, TOYOTA, 50))
    assert plan_of(shop.session, after).holdout is False
    assert plan_of(shop.session, before).holdout is True


HARBOR_TOML = """
[group]
name = "Harbor Motors"

[[rooftop]]
slug = "harbor-toyota"
name = "Harbor Toyota"
timezone = "America/Los_Angeles"
sms_from = "+14155550300"
followup_days = [3, 10, 30]
followup_holdout_percent = 50
[rooftop.dms]
kind = "simulator"
seed = 9
"""


def test_each_ro_keeps_its_own_draw_across_a_customers_ros_and_groups(
    half_held: Database, shop: Shop
) -> None:
    apply_dealer_config(
        shop.session, config=parse_dealer_config(tomllib.loads(HARBOR_TOML), "t"), source="t"
    )
    harbor = shop.session.scalars(
        select(DealerGroup).where(DealerGroup.name == "Harbor Motors")
    ).one()
    harbor_key = group_key(shop.session, group_id=harbor.id)
    assert harbor_key != KEY and re.fullmatch(r"[0-9a-f]{64}", harbor_key)
    # Sam at Bayview: one RO held out, the next followed, each by its own draw.
    held_number, followed_number = next(ro_numbers(True, 50)), next(ro_numbers(False, 50))
    held_ro, sam, car = closed_ro(shop, held_number, lines=(OIL, BRAKES))
    followed_ro, _, _ = closed_ro(
        shop,
        followed_number,
        customer=sam,
        vehicle=car,
        lines=(OIL, Line("C", "WIPER", "Wipers", 4500, "declined")),
        opened=at(LA, 2026, 10, 30, 8),
        closed=at(LA, 2026, 10, 30, 10),
    )
    # The same person is another customer record in another group, with the same RO numbers.
    sam_at_harbor = harbor_customer(shop.session, harbor.id, "+14155550142")
    harbor_car = harbor_vehicle(shop.session, harbor.id, sam_at_harbor)
    harbor_plans = []
    for number, ro in ((held_number, held_ro), (followed_number, followed_ro)):
        twin, _, _ = closed_ro(
            shop,
            number,
            slug="harbor-toyota",
            customer=sam_at_harbor,
            vehicle=harbor_car,
            lines=tuple(
                Line(ln.line_code, ln.op_code, ln.description, ln.amount_cents, ln.status)
                for ln in ro.lines
            ),
            opened=ro.opened_at,
            closed=ro.closed_at,
        )
        harbor_plans.append(plan_of(shop.session, twin))
    assert plan_of(shop.session, held_ro).holdout is True
    assert plan_of(shop.session, followed_ro).holdout is False
    for plan, number in zip(harbor_plans, (held_number, followed_number), strict=True):
        expected = is_held_out(
            key=harbor_key, rooftop_slug="harbor-toyota", ro_number=number, percent=50
        )
        assert (plan.holdout, plan.holdout_percent) == (expected, 50)
    assert run_at(shop, half_held, at(LA, 2026, 11, 2, 10)) == 1 + sum(
        not p.holdout for p in harbor_plans
    )
    sent = {m.repair_order_id for m in followup_messages(shop.session)}
    assert followed_ro.id in sent and held_ro.id not in sent


def harbor_vehicle(session: Session, group_id: int, customer: Customer) -> Vehicle:
    vehicle = Vehicle(group_id=group_id, vin="JTMW1RFV5MD012345", customer_id=customer.id)
    session.add(vehicle)
    session.flush()
    return vehicle


def harbor_customer(session: Session, group_id: int, e164: str) -> Customer:
    customer = Customer(group_id=group_id, first_name="Sam", last_name="Lee", language="en")
    phone = Phone(group_id=group_id, e164=e164, as_typed=e164, kind="mobile")
    session.add_all([customer, phone])
    session.flush()
    session.add(CustomerPhone(customer_id=customer.id, phone_id=phone.id, is_primary=True))
    session.flush()
    return customer


@pytest.mark.parametrize("body", ["STOP", "No thanks, not interested"])
def test_a_held_out_customer_who_texts_no_or_stop_is_handled_as_anyone_else(
    half_held: Database, shop: Shop, body: str
) -> None:
    held_ro, _, _ = closed_ro(shop, next(ro_numbers(True, 50)), lines=(OIL, BRAKES))
    twin = shop.customer("Sam", "Lee", "+14155550143")
    followed_ro, _, _ = closed_ro(
        shop,
        next(ro_numbers(False, 50)),
        customer=twin,
        vehicle=shop.vehicle(twin, "1FTEW1EP5MFA00002"),
        lines=(OIL, BRAKES),
    )
    shop.session.commit()
    replies = []
    for n, phone in enumerate(("+14155550142", "+14155550143")):
        form = {"MessageSid": f"SM{n:032x}", "From": phone, "To": "+14155550100", "Body": body}
        with half_held.transaction() as session:
            replies.append(receive_message(session, form=form, now=at(LA, 2026, 10, 30, 9)))
    # Same answer for both (a plain-long-code STOP is Twilio's to answer: none from Pitwall).
    assert replies[0] == replies[1] and (replies[0] or body == "STOP")
    run_at(shop, half_held, at(LA, 2026, 11, 1, 10))
    held, followed = plan_of(shop.session, held_ro), plan_of(shop.session, followed_ro)
    assert (held.state, held.stopped_reason) == (followed.state, followed.stopped_reason)
    assert held.state == "stopped" and held.holdout and not followed.holdout
    assert followup_messages(shop.session) == []
    held_reasons = [t.canceled_reason for t in touches(shop.session, held.id)]
    followed_reasons = [t.canceled_reason for t in touches(shop.session, followed.id)]
    assert held_reasons == followed_reasons and HELD_OUT not in held_reasons


def test_a_group_without_a_key_gets_one_once(half_held: Database, shop: Shop) -> None:
    shop.session.execute(text("UPDATE dealer_group SET holdout_key = NULL"))
    group_id = shop.session.scalars(select(Rooftop.group_id)).first()
    assert group_id is not None
    first = group_key(shop.session, group_id=group_id)
    assert re.fullmatch(r"[0-9a-f]{64}", first) and first != KEY
    assert group_key(shop.session, group_id=group_id) == first
    ro, _, _ = closed_ro(shop, "R1001", lines=(OIL, BRAKES))
    plan = plan_of(shop.session, ro)
    assert plan.holdout == is_held_out(
        key=first, rooftop_slug=TOYOTA, ro_number="R1001", percent=50
    )
    assert shop.session.scalars(select(RoLine)).first() is not None
