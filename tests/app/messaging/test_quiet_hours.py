"""Quiet hours in the rooftop's zone and the recipient's, across a daylight-saving change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import time_machine

from app.config import QuietHours
from app.conversations.models import InboundMessage
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.messaging.policies import next_allowed, quiet_hours_verdict, recipient_zone
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Shop, at_local, sent_to

LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")
NIGHT = QuietHours.parse("21:00-08:00")


def test_recipient_zone_comes_from_the_number() -> None:
    assert recipient_zone("+12125550142") == NY
    assert recipient_zone("+14155550142") == LA
    assert recipient_zone("+447700900123") is None  # a UK mobile: no single zone


def test_the_later_morning_of_both_zones_wins() -> None:
    evening = at_local("America/Los_Angeles", 2026, 11, 20, 19, 30)  # 22:30 in New York
    assert next_allowed(evening, NIGHT, [LA]) is None
    assert next_allowed(evening, NIGHT, [LA, NY]) == at_local(
        "America/Los_Angeles", 2026, 11, 21, 8, 0
    )
    early = at_local("America/New_York", 2026, 11, 21, 8, 30)  # 05:30 in Los Angeles
    assert next_allowed(early, NIGHT, [LA, NY]) == at_local(
        "America/Los_Angeles", 2026, 11, 21, 8, 0
    )
    assert next_allowed(early, QuietHours.parse("off"), [LA, NY]) is None


def test_the_night_daylight_saving_ends_and_begins() -> None:
    # US DST ends Sunday 2026-11-01 02:00: 08:00 PST is 16:00 UTC, not 15:00.
    fall = at_local("America/Los_Angeles", 2026, 10, 31, 22, 30)
    assert next_allowed(fall, NIGHT, [LA]) == datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    # ...and begins Sunday 2026-03-08: 08:00 PDT is 15:00 UTC.
    spring = at_local("America/Los_Angeles", 2026, 3, 7, 23, 0)
    assert next_allowed(spring, NIGHT, [LA]) == datetime(2026, 3, 8, 15, 0, tzinfo=UTC)


def test_a_new_york_customer_of_a_california_store_waits_for_the_california_morning(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(quiet_hours="21:00-08:00")
    new_yorker, _ = shop.customer("+12125550142")
    local, _ = shop.customer("+14155550142", first_name="Alex")
    with time_machine.travel(at_local("America/Los_Angeles", 2026, 11, 20, 19, 30), tick=True):
        shop.repair_order(new_yorker, number="R1")
        shop.repair_order(local, number="R2")
        result = dispatch()
    assert (result.sent, result.deferred) == (1, 1)
    held = next(m for m in shop.messages() if m.state == "pending")
    assert held.to_address == "+12125550142"
    assert held.not_before == at_local("America/Los_Angeles", 2026, 11, 21, 8, 0)
    assert "America/New_York" in (held.suppressed_reason or "")
    assert [m.to for m in sent_to(sandbox)] == ["+14155550142"]
    with time_machine.travel(at_local("America/Los_Angeles", 2026, 11, 21, 8, 0, 30), tick=True):
        assert dispatch().sent == 1


def test_held_across_the_daylight_saving_change(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(quiet_hours="21:00-08:00")
    customer, _ = shop.customer()
    with time_machine.travel(at_local("America/Los_Angeles", 2026, 10, 31, 22, 30), tick=True):
        shop.repair_order(customer)
        assert dispatch().deferred == 1
    (held,) = shop.messages()
    assert held.not_before == datetime(2026, 11, 1, 16, 0, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 11, 1, 15, 30, tzinfo=UTC), tick=True):
        assert dispatch().claimed == 0  # 07:30 PST: still night
    with time_machine.travel(datetime(2026, 11, 1, 16, 0, 5, tzinfo=UTC), tick=True):
        assert dispatch().sent == 1


def test_a_reply_to_a_customer_who_just_wrote_is_not_held(shop: Shop) -> None:
    shop.configure(quiet_hours="21:00-08:00")
    customer, phone = shop.customer()
    night = at_local("America/Los_Angeles", 2026, 11, 20, 23, 0)
    with shop.database.transaction() as session:
        session.add(
            InboundMessage(
                provider_sid="SM" + "2" * 32,
                channel="sms",
                from_address="+14155550142",
                to_address="+14155550100",
                customer_id=customer,
                phone_id=phone,
                received_at=night - timedelta(hours=1),
            )
        )
        session.flush()
        rooftop = session.get(Rooftop, shop.rooftop_id)
        assert rooftop is not None
        reply = OutboundMessage(
            rooftop_id=shop.rooftop_id,
            customer_id=customer,
            phone_id=phone,
            kind="reply",
            purpose="conversational",
            dedupe_key="r",
            channel="sms",
            id=999,
        )
        status = OutboundMessage(
            rooftop_id=shop.rooftop_id,
            customer_id=customer,
            phone_id=phone,
            kind="status",
            purpose="status",
            dedupe_key="s",
            channel="sms",
            id=998,
        )
        config = rooftop.settings
        assert (
            quiet_hours_verdict(
                session, message=reply, rooftop=config, recipient_e164="+14155550142", now=night
            )
            is None
        )
        held = quiet_hours_verdict(
            session, message=status, rooftop=config, recipient_e164="+14155550142", now=night
        )
        assert held is not None and held.action == "defer"
