"""What the send-time policies read for a whole claimed batch, fetched at once.

Consent (and Twilio's carrier blocks) for the batch's phones and the daily cap's
counts for its customers: one query each, built once per dialect, the batch's ids
bound as one parameter (`app/messaging/id_lists.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, or_, select
from sqlalchemy.orm import Session

from app.config import RooftopConfig
from app.customers.carrier import CARRIER
from app.customers.models import Consent
from app.messaging.id_lists import ids_value, in_ids
from app.messaging.models import OutboundMessage

# Automatic messages count against the per-customer daily cap; replies do not.
AUTOMATIC_KINDS = ("status", "followup", "watchdog")


class Message(Protocol):
    """What the policies read of a message: an outbox row, or a claimed batch's plain row."""

    @property
    def id(self) -> int: ...
    @property
    def rooftop_id(self) -> int: ...
    @property
    def customer_id(self) -> int | None: ...
    @property
    def phone_id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...


@dataclass
class BatchFacts:
    """What the consent and daily-cap policies read, fetched once for a claimed batch.

    `consent` holds the latest ledger row per (phone, channel, purpose) of the
    batch's phones; `counted` the automatic messages per (customer, rooftop) sent
    today or being sent, the batch's own rows left out; `days` each rooftop's local
    day as UTC bounds. The dispatcher calls `sending(message)` for each row it
    decides to send, so later rows of the same customer in the batch count it.
    """

    consent: dict[tuple[int, str, str], tuple[str, str]] = field(default_factory=dict)
    counted: Counter[tuple[int, int]] = field(default_factory=Counter)
    # (phone, sender) -> Twilio's block as the ledger last heard of it (app/customers/carrier.py)
    carrier: dict[tuple[int, str], str] = field(default_factory=dict)
    days: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)

    def sending(self, message: Message) -> None:
        customer_id = message.customer_id
        if message.kind in AUTOMATIC_KINDS and customer_id is not None:
            self.counted[(customer_id, message.rooftop_id)] += 1


def batch_facts(
    session: Session,
    *,
    messages: Sequence[Message],
    rooftops: dict[int, RooftopConfig],
    now: datetime,
) -> BatchFacts:
    """Consent and today's counts for a whole batch: one query each, whatever its rooftops.

    Both statements are built once (`_facts_sql`) and take the batch's ids as one
    parameter each: a claim pays for its rows, not for building SQL.
    """
    dialect = session.get_bind().dialect.name
    consent_sql, counted_sql = _facts_sql(dialect)
    connection = session.connection()
    days = {rooftop_id: local_day(now, config) for rooftop_id, config in rooftops.items()}
    facts = BatchFacts(days=days)
    phone_ids = {m.phone_id for m in messages if m.phone_id is not None}
    if phone_ids:
        ledger = connection.execute(consent_sql, {"phones": ids_value(phone_ids, dialect)})
        for phone_id, channel, purpose, action, source, detail in ledger:
            if purpose == CARRIER:
                facts.carrier[(phone_id, detail or "")] = action
                continue
            facts.consent[(phone_id, channel, purpose)] = (action, source)  # the latest wins
    wanted = {
        (m.customer_id, m.rooftop_id)
        for m in messages
        if m.customer_id is not None and m.rooftop_id in rooftops
    }
    if not wanted:
        return facts
    # One query for every rooftop of the batch: each has its own local day, so rows from
    # the earliest start to the latest end come back and each is counted against its own.
    rows = connection.execute(
        counted_sql,
        {
            "customers": ids_value({c for c, _r in wanted}, dialect),
            "batch": ids_value([m.id for m in messages], dialect),
            "earliest": min(start for start, _end in days.values()),
            "latest": max(end for _start, end in days.values()),
        },
    )
    for customer_id, rooftop_id, state, sent_at in rows:
        if customer_id is None or (customer_id, rooftop_id) not in wanted:
            continue
        start, end = days[rooftop_id]
        if state == "sending" or (sent_at is not None and start <= sent_at < end):
            facts.counted[(customer_id, rooftop_id)] += 1
    return facts


@lru_cache(maxsize=4)
def _facts_sql(dialect: str) -> tuple[Any, Any]:
    """`batch_facts`' two statements for one dialect: the consent ledger, today's counts."""
    # Table columns, not the ORM's attributes: no ORM compile and result set-up.
    ledger = cast(Table, Consent.__table__).c
    outbox = cast(Table, OutboundMessage.__table__).c
    consent = (
        select(
            ledger.phone_id,
            ledger.channel,
            ledger.purpose,
            ledger.action,
            ledger.source,
            ledger.detail,
        )
        .where(in_ids(ledger.phone_id, "phones", dialect))
        .order_by(ledger.id)
    )
    counted = select(outbox.customer_id, outbox.rooftop_id, outbox.state, outbox.sent_at).where(
        # No rooftop term: SQLite, which cannot tell how many ids a parameter holds,
        # would walk every row of the rooftop instead of the customers' (the loop in
        # `batch_facts` leaves out other rooftops' rows).
        in_ids(outbox.customer_id, "customers", dialect),
        outbox.kind.in_(AUTOMATIC_KINDS),
        in_ids(outbox.id, "batch", dialect, negate=True),
        or_(
            outbox.state == "sending",
            (outbox.sent_at >= bindparam("earliest", type_=outbox.sent_at.type))
            & (outbox.sent_at < bindparam("latest", type_=outbox.sent_at.type)),
        ),
    )
    return consent, counted


def local_day(now: datetime, rooftop: RooftopConfig) -> tuple[datetime, datetime]:
    """The rooftop-local day around `now`, as UTC bounds."""
    local_day = now.astimezone(rooftop.zone).date()
    day_start = datetime.combine(local_day, time(0), tzinfo=rooftop.zone).astimezone(UTC)
    next_day = datetime.combine(
        local_day + timedelta(days=1), time(0), tzinfo=rooftop.zone
    ).astimezone(UTC)
    return day_start, next_day
