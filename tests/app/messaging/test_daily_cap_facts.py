"""The daily cap's counts for a claimed batch: one query, each rooftop counted in its own day."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from app.dealers.models import Rooftop
from app.messaging.facts import batch_facts
from app.messaging.models import OutboundMessage
from tests.app.messaging.conftest import Shop

# 07:30 UTC: still Sunday 22 Nov in Los Angeles, already Monday 23 Nov in Paris.
NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)


def _message(shop: Shop, key: str, *, rooftop_id: int, customer_id: int, **values: object) -> int:
    with shop.database.transaction() as session:
        row = OutboundMessage(
            rooftop_id=rooftop_id,
            customer_id=customer_id,
            kind="status",
            purpose="status",
            dedupe_key=key,
            channel="sms",
            to_address="+14155550142",
            body="x",
            not_before=NOW,
            **values,
        )
        session.add(row)
        session.flush()
        return row.id


def test_each_rooftop_counts_what_it_sent_today_in_its_own_zone(shop: Shop) -> None:
    customer, _phone = shop.customer()
    with shop.database.transaction() as session:
        rooftops = list(session.scalars(select(Rooftop).order_by(Rooftop.id)))
        here, there = rooftops[0].id, rooftops[1].id
        configs = {
            here: rooftops[0].settings.model_copy(update={"timezone": "America/Los_Angeles"}),
            there: rooftops[1].settings.model_copy(update={"timezone": "Europe/Paris"}),
        }
    evening = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)  # Sunday in both zones
    early = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Sunday in LA, Monday in Paris
    _message(shop, "a1", rooftop_id=here, customer_id=customer, state="sent", sent_at=evening)
    _message(shop, "a2", rooftop_id=here, customer_id=customer, state="sending")
    _message(shop, "b1", rooftop_id=there, customer_id=customer, state="sent", sent_at=evening)
    _message(shop, "b2", rooftop_id=there, customer_id=customer, state="sent", sent_at=early)
    batch = [
        _message(shop, "a3", rooftop_id=here, customer_id=customer, state="sending"),
        _message(shop, "b3", rooftop_id=there, customer_id=customer, state="sending"),
    ]
    with shop.database.transaction() as session:
        messages = [session.get(OutboundMessage, i) for i in batch]
        facts = batch_facts(session, messages=messages, rooftops=configs, now=NOW)  # type: ignore[arg-type]
    # LA: Sunday's send and the one in flight (not the batch's own); Paris: Monday's only.
    assert facts.counted == {(customer, here): 2, (customer, there): 1}
