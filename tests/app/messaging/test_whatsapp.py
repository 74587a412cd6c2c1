"""WhatsApp: free text inside the 24 h window, the approved template outside it, SMS otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.conversations.models import InboundMessage
from app.customer_page.models import CustomerLink
from app.customer_page.tokens import token_hash
from app.db import utcnow
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Shop, sent_to

NUMBER = "+14155550142"
WA = f"whatsapp:{NUMBER}"
TEMPLATE = "HX0123456789abcdef0123456789abcdef"  # the sample dealer's ready_for_pickup


def customer_wrote_on_whatsapp(
    shop: Shop, sandbox: SandboxServer, customer: int, phone: int, *, hours_ago: float
) -> None:
    at = utcnow() - timedelta(hours=hours_ago)
    with shop.database.transaction() as session:
        session.add(
            InboundMessage(
                provider_sid=f"SM{customer:032x}",
                group_id=shop.group_id,
                rooftop_id=shop.rooftop_id,
                channel="whatsapp",
                from_address=WA,
                to_address="whatsapp:+14155550101",
                body="hi",
                customer_id=customer,
                phone_id=phone,
                received_at=at,
            )
        )
    sandbox.state.note_whatsapp_inbound(WA, at)


def test_inside_the_window_free_text_goes_on_whatsapp(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, phone = shop.customer()
    customer_wrote_on_whatsapp(shop, sandbox, customer, phone, hours_ago=2)
    ro = shop.repair_order(customer, stage="in_repair")
    shop.move(ro, "ready_for_pickup")
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    (held,) = sent_to(sandbox, WA)
    assert held.body and "ready for pickup" in held.body and held.content_sid is None
    assert held.from_ == "whatsapp:+14155550101"
    assert shop.messages()[-1].state == "delivered"


def test_outside_the_window_the_approved_template_is_used(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, phone = shop.customer()
    customer_wrote_on_whatsapp(shop, sandbox, customer, phone, hours_ago=30)
    ro = shop.repair_order(customer, stage="in_repair")
    dispatch()  # in_repair has no approved template: it goes by SMS
    shop.move(ro, "ready_for_pickup")
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    (template,) = sent_to(sandbox, WA)
    assert template.content_sid == TEMPLATE and template.body is None
    variables = json.loads(template.content_variables or "{}")
    assert variables["2"] == "2021 Toyota RAV4"
    (sms,) = sent_to(sandbox, NUMBER)
    assert sms.body and "technicians" in sms.body
    in_repair, ready = shop.messages()
    assert (in_repair.channel, ready.channel) == ("sms", "whatsapp")
    # "6" ends the template button's URL (<PITWALL_PUBLIC_URL>/c/{{6}}): this text's own link.
    with shop.database.transaction() as session:
        link = session.scalars(
            select(CustomerLink).where(CustomerLink.token_hash == token_hash(variables["6"]))
        ).one()
        assert (link.repair_order_id, link.outbound_message_id) == (ro, ready.id)


def test_whatsapp_failure_falls_back_to_sms_once(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, phone = shop.customer(preferred_channel="whatsapp")
    # Pitwall believes the window is open; WhatsApp disagrees (63016, in the callback).
    with shop.database.transaction() as session:
        session.add(
            InboundMessage(
                provider_sid="SM" + "1" * 32,
                group_id=shop.group_id,
                rooftop_id=shop.rooftop_id,
                channel="whatsapp",
                from_address=WA,
                to_address="whatsapp:+14155550101",
                body="hi",
                customer_id=customer,
                phone_id=phone,
                received_at=utcnow(),
            )
        )
    sandbox.inject("duplicate")  # the failure callback arrives twice
    shop.repair_order(customer)
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    original, fallback = shop.messages()
    assert (original.channel, original.state, original.error_code) == ("whatsapp", "failed", 63016)
    assert fallback.channel == "sms" and fallback.fallback_of_id == original.id
    assert fallback.dedupe_key == original.dedupe_key + ":sms-fallback"
    dispatch()
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    (sms,) = sent_to(sandbox, NUMBER)
    assert sms.body == original.body
    assert [m.state for m in shop.messages()] == ["failed", "delivered"]
