"""Carrier delivery errors through the sandbox's real status callbacks: 30003 is tried again
later and never marks the phone; 30007 and 30034 alert the operator with the number."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.customers.models import Phone
from app.ops.models import Alert
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Shop


def test_an_unreachable_handset_gets_the_text_again_later_and_stays_textable(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, phone_id = shop.customer()
    shop.repair_order(customer, stage="ready_for_pickup")
    sandbox.inject("fail", error_code=30003)
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    first, retry = shop.messages()
    assert (first.state, first.error_code) == ("undelivered", 30003)
    assert first.suppressed_reason is not None and "trying again" in first.suppressed_reason
    assert (retry.state, retry.body, retry.dedupe_key) == (
        "pending",
        first.body,
        f"{first.dedupe_key}:unreachable-retry-1",
    )
    assert retry.not_before is not None and first.updated_at is not None
    assert timedelta(minutes=29) < retry.not_before - first.updated_at < timedelta(minutes=31)
    with shop.database.sessions() as session:
        phone = session.get(Phone, phone_id)
        assert phone is not None and phone.textable


def test_a_text_is_not_retried_past_its_validity(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, _ = shop.customer()
    shop.repair_order(customer, stage="in_repair")  # an 18-hour status text
    sandbox.inject("fail", error_code=30003)
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    first = shop.messages()[0]
    from app.messaging.carrier_errors import plan_unreachable_retry

    with shop.database.sessions() as session:
        from app.messaging.models import OutboundMessage

        row = session.get_one(OutboundMessage, first.id)
        assert row.expires_at is not None
        late = row.expires_at - timedelta(minutes=10)
        assert plan_unreachable_retry(row, now=late) is None
        row.dedupe_key = f"{row.dedupe_key}:unreachable-retry-3"
        assert plan_unreachable_retry(row, now=row.created_at) is None  # tries spent


def test_carrier_filtering_and_an_unregistered_number_alert_the_operator(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    for code, number in ((30007, "+14155550142"), (30034, "+14155550143")):
        customer, _ = shop.customer(number)
        shop.repair_order(customer, number=f"R{code}")
        sandbox.inject("fail", error_code=code)
        dispatch()
        assert sandbox.wait_for_callbacks(10)
    with shop.database.sessions() as session:
        alerts = {a.key: a.message for a in session.scalars(select(Alert))}
    filtered = next(m for k, m in alerts.items() if k.startswith("twilio:30007:"))
    unregistered = next(m for k, m in alerts.items() if k.startswith("twilio:30034:"))
    assert "+14155550100" in filtered and "spam" in filtered
    assert "+14155550100" in unregistered and "A2P 10DLC" in unregistered
