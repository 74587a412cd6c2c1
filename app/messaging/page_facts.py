"""What a page of status texts needs to know, read in one query per fact for the page.

A first poll of 1,000 new ROs asked each fact once per RO (who the customer is, their
best phone, whether the rooftop ever texted it, their last channel), and queued each
text with its own dedupe check and flush: the status texts were 60% of a first poll
that cost 5-8 ms per RO. Here each fact is one query for the whole page (chunked at the
driver's parameter limit), answering what its one-customer counterpart in `channels`
(`primary_phone`, `choose_channel`) answers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from app.conversations.models import InboundMessage
from app.customers.models import Customer, CustomerPhone, Phone
from app.db import chunks, one_of
from app.dealers.models import Rooftop
from app.messaging.channels import phone_rank, pick_channel


def customers_by_id(session: Session, ids: Iterable[int]) -> dict[int, Customer]:
    """The customers with these ids; those the session holds (a poll's new ones) cost no query."""
    found: dict[int, Customer] = {}
    missing: list[int] = []
    for customer_id in sorted(set(ids)):
        held = session.identity_map.get(session.identity_key(Customer, customer_id))
        if isinstance(held, Customer) and not inspect(held).expired_attributes:
            found[customer_id] = held
        else:
            missing.append(customer_id)
    for chunk in chunks(missing):
        query = select(Customer).where(one_of(session, Customer.id, chunk))
        found.update((customer.id, customer) for customer in session.scalars(query))
    return found


def primary_phones(session: Session, customer_ids: Collection[int]) -> dict[int, Phone]:
    """Customer id -> their best textable phone (`channels.primary_phone`), for those with one."""
    best: dict[int, tuple[tuple[int, int, int], Phone]] = {}
    for chunk in chunks(sorted(set(customer_ids))):
        rows = session.execute(
            select(Phone, CustomerPhone.customer_id, CustomerPhone.kind, CustomerPhone.is_primary)
            .join(CustomerPhone, CustomerPhone.phone_id == Phone.id)
            .where(
                one_of(session, CustomerPhone.customer_id, chunk),
                Phone.textable.is_(True),
                Phone.e164.is_not(None),
            )
        )
        for phone, customer_id, link_kind, is_primary in rows:
            rank = phone_rank(link_kind, phone, is_primary)
            if customer_id not in best or rank < best[customer_id][0]:
                best[customer_id] = (rank, phone)
    return {customer_id: phone for customer_id, (_, phone) in best.items()}


def channels_for(
    session: Session, *, customers: Collection[Customer], rooftop: Rooftop
) -> dict[int, str]:
    """Customer id -> the channel `channels.choose_channel` picks: the last inbound one, else
    their DMS preference, else SMS; always SMS where the rooftop has no WhatsApp sender."""
    if not rooftop.whatsapp_from:
        return {customer.id: "sms" for customer in customers}
    last: dict[int, str] = {}
    for chunk in chunks(sorted({customer.id for customer in customers})):
        latest = (
            select(
                InboundMessage.customer_id,
                InboundMessage.channel,
                func.row_number()
                .over(
                    partition_by=InboundMessage.customer_id,
                    order_by=(InboundMessage.received_at.desc(), InboundMessage.id.desc()),
                )
                .label("recency"),
            )
            .where(one_of(session, InboundMessage.customer_id, chunk))
            .subquery()
        )
        rows = session.execute(
            select(latest.c.customer_id, latest.c.channel).where(latest.c.recency == 1)
        )
        last.update((customer_id, str(channel)) for customer_id, channel in rows)
    return {
        customer.id: pick_channel(last.get(customer.id), customer.preferred_channel)
        for customer in customers
    }
