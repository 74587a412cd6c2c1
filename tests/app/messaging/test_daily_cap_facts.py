"""The daily cap's counts and consent for a claimed batch: one query (on PostgreSQL the claim's
own), each rooftop counted in its own day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.config import RooftopConfig
from app.customers.models import Consent
from app.dealers.models import Rooftop
from app.messaging.claim_sql import claim_sql, due_batch
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


def _two_zones(shop: Shop) -> tuple[int, int, dict[int, RooftopConfig]]:
    """The two rooftops' ids, one in Los Angeles and one in Paris, with their configs."""
    with shop.database.transaction() as session:
        rooftops = list(session.scalars(select(Rooftop).order_by(Rooftop.id)))
    here, there = rooftops[0].id, rooftops[1].id
    return (
        here,
        there,
        {
            here: rooftops[0].settings.model_copy(update={"timezone": "America/Los_Angeles"}),
            there: rooftops[1].settings.model_copy(update={"timezone": "Europe/Paris"}),
        },
    )


def test_each_rooftop_counts_what_it_sent_today_in_its_own_zone(shop: Shop) -> None:
    customer, _phone = shop.customer()
    here, there, configs = _two_zones(shop)
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


@pytest.mark.postgres_only
def test_the_claims_own_statement_reads_the_facts_the_queries_would(shop: Shop) -> None:
    """On PostgreSQL the claim reads consent and the counts in its own statement (a round
    trip fewer); the policies see what `batch_facts`' own queries read, the batch's rows
    left out even when a claim takes lapsed rows and pending ones in two statements."""
    customer, phone = shop.customer()
    here, there, configs = _two_zones(shop)
    with shop.database.transaction() as session:
        session.add(
            Consent(
                group_id=shop.group_id,
                phone_id=phone,
                customer_id=customer,
                channel="sms",
                purpose="marketing",
                action="revoked",
                source="keyword",
                at=NOW - timedelta(hours=1),
            )
        )
    evening = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    early = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    last_week = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
    _message(shop, "a1", rooftop_id=here, customer_id=customer, state="sent", sent_at=evening)
    _message(shop, "a2", rooftop_id=here, customer_id=customer, state="sending")
    _message(shop, "a0", rooftop_id=here, customer_id=customer, state="sent", sent_at=last_week)
    _message(shop, "b1", rooftop_id=there, customer_id=customer, state="sent", sent_at=evening)
    _message(shop, "b2", rooftop_id=there, customer_id=customer, state="sent", sent_at=early)
    lapsed = NOW - timedelta(minutes=1)
    for key, rooftop_id in (("a3", here), ("b3", there)):
        _message(
            shop, key, rooftop_id=rooftop_id, customer_id=customer, phone_id=phone, state="pending"
        )
    _message(
        shop,
        "a4",
        rooftop_id=here,
        customer_id=customer,
        phone_id=phone,
        state="sending",
        claimed_until=lapsed,
    )
    # Another customer's only other row is the lapsed one: their pending row's statement
    # reads it as being sent, but it is the batch's own.
    other, other_phone = shop.customer("+14155550143")
    _message(shop, "c3", rooftop_id=here, customer_id=other, phone_id=other_phone)
    _message(
        shop,
        "c4",
        rooftop_id=here,
        customer_id=other,
        phone_id=other_phone,
        state="sending",
        claimed_until=lapsed,
    )
    with shop.database.transaction() as session:
        connection = session.connection()
        due = due_batch(connection, claim_sql("postgresql"), now=NOW, limit=10, lapsed=True)
        assert len(due.rows) == 5 and due.facts is not None
        read = batch_facts(session, messages=due.rows, rooftops=configs, now=NOW, read=due.facts)
        queried = batch_facts(session, messages=due.rows, rooftops=configs, now=NOW)
    assert read.counted == queried.counted == {(customer, here): 2, (customer, there): 1}
    assert read.consent == queried.consent and (phone, "sms", "marketing") in read.consent
    assert read.carrier == queried.carrier
