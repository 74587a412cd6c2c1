"""The claim step on its own: what a claimed batch writes before anything is sent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from app.db import utcnow
from app.messaging.claim import claim_and_decide
from app.messaging.models import OutboundMessage
from app.messaging.outcomes import DispatchResult
from tests.app.messaging.conftest import Shop

CALLBACK = "http://127.0.0.1:8000/webhooks/twilio/status"


def _row(shop: Shop, key: str, *, customer: int, phone: int, **values: object) -> dict[str, object]:
    now = utcnow()
    return {
        "rooftop_id": shop.rooftop_id,
        "customer_id": customer,
        "phone_id": phone,
        "kind": "status",
        "purpose": "status",
        "stage": "in_repair",
        "dedupe_key": key,
        "channel": "sms",
        "to_address": "+14155550142",
        "from_address": "+14155550100",
        "body": f"message {key}",
        "state": "pending",
        "not_before": now - timedelta(minutes=1),
        "attempt": 0,
        "created_at": now,
        "updated_at": now,
        **values,
    }


def test_a_crashed_send_held_by_the_cap_is_still_looked_up_before_it_is_sent(shop: Shop) -> None:
    """A worker died after starting the send (it may be at Twilio); the next claim holds the
    row for the daily cap. It keeps its `send_started_at`, so the send after the hold asks
    Twilio first instead of sending a second copy."""
    shop.configure(daily_cap=1)
    customer, phone = shop.customer()
    now = utcnow()
    started = now - timedelta(minutes=10)
    with shop.database.transaction() as session:
        session.execute(
            insert(OutboundMessage),
            [
                _row(shop, "earlier", customer=customer, phone=phone, state="sent", sent_at=now),
                _row(
                    shop,
                    "crashed",
                    customer=customer,
                    phone=phone,
                    state="sending",
                    claim_token="dead-worker",
                    claimed_until=now - timedelta(minutes=1),
                    send_started_at=started,
                ),
            ],
        )
    result = DispatchResult()
    plans, claimed = claim_and_decide(
        shop.database,
        token="next-worker",
        now=now,
        limit=10,
        lease=timedelta(minutes=5),
        callback=CALLBACK,
        result=result,
    )
    assert (plans, claimed, result.deferred) == ([], 1, 1)
    with shop.database.sessions() as session:
        row = session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == "crashed"))
    assert row is not None
    assert row.state == "pending" and row.claim_token is None
    assert row.suppressed_reason is not None and row.suppressed_reason.startswith("daily cap")
    assert row.send_started_at == started


def test_a_claimed_row_gets_the_sender_and_number_it_is_sent_with(shop: Shop) -> None:
    """Rows enqueued without addresses are sent from the rooftop's number to the phone's,
    and the row says so from the claim on."""
    customer, phone = shop.customer()
    with shop.database.transaction() as session:
        session.execute(
            insert(OutboundMessage),
            [
                _row(
                    shop, "bare", customer=customer, phone=phone, to_address=None, from_address=None
                )
            ],
        )
    result = DispatchResult()
    now = utcnow()
    plans, claimed = claim_and_decide(
        shop.database,
        token="worker",
        now=now,
        limit=10,
        lease=timedelta(minutes=5),
        callback=CALLBACK,
        result=result,
    )
    assert claimed == 1 and len(plans) == 1
    plan = plans[0]
    assert (plan.outgoing.to, plan.outgoing.from_) == ("+14155550142", "+14155550100")
    assert plan.claimed_until == now + timedelta(minutes=5) and not plan.reconcile
    with shop.database.sessions() as session:
        row = session.get(OutboundMessage, plan.message_id)
    assert row is not None
    assert (row.state, row.claim_token, row.to_address, row.from_address) == (
        "sending",
        "worker",
        "+14155550142",
        "+14155550100",
    )
    assert row.send_started_at == now and row.claimed_until == now + timedelta(minutes=5)
