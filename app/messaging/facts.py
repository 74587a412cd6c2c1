"""What the send-time policies read for a whole claimed batch, fetched at once.

Consent (and Twilio's carrier blocks) for the batch's phones and the daily cap's
counts for its customers: one query each (on PostgreSQL both in one statement), built
once per dialect, the batch's ids bound as one parameter (`app/messaging/id_lists.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
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
    consent_sql, counted_sql, both_sql = _facts_sql(dialect)
    connection = session.connection()
    days = {rooftop_id: local_day(now, config) for rooftop_id, config in rooftops.items()}
    facts = BatchFacts(days=days)
    phone_ids = {m.phone_id for m in messages if m.phone_id is not None}
    wanted = {
        (m.customer_id, m.rooftop_id)
        for m in messages
        if m.customer_id is not None and m.rooftop_id in rooftops
    }
    # One query for every rooftop of the batch: each has its own local day, so rows from
    # the earliest start to the latest end come back and each is counted against its own.
    counted_parameters = {
        "customers": ids_value({c for c, _r in wanted}, dialect),
        "batch": ids_value([m.id for m in messages], dialect),
        "earliest": min((start for start, _end in days.values()), default=now),
        "latest": max((end for _start, end in days.values()), default=now),
    }
    if both_sql is not None:
        # PostgreSQL: both reads in one statement, each as one JSON array (a round trip
        # and a statement's overhead fewer per claim; a claim of one row paid for three).
        ledger, counted = connection.execute(
            both_sql, {"phones": ids_value(phone_ids, dialect), **counted_parameters}
        ).one()
        _add_consent(facts, ledger or ())
        _add_counted(facts, _timed(counted or ()), wanted)
        return facts
    if phone_ids:
        _add_consent(
            facts, connection.execute(consent_sql, {"phones": ids_value(phone_ids, dialect)})
        )
    if wanted:
        _add_counted(facts, connection.execute(counted_sql, counted_parameters), wanted)
    return facts


def _add_consent(facts: BatchFacts, ledger: Iterable[Sequence[Any]]) -> None:
    for phone_id, channel, purpose, action, source, detail in ledger:
        if purpose == CARRIER:
            facts.carrier[(phone_id, detail or "")] = action
            continue
        facts.consent[(phone_id, channel, purpose)] = (action, source)  # the latest wins


def _add_counted(
    facts: BatchFacts, rows: Iterable[Sequence[Any]], wanted: set[tuple[int, int]]
) -> None:
    for customer_id, rooftop_id, state, sent_at in rows:
        if customer_id is None or (customer_id, rooftop_id) not in wanted:
            continue
        start, end = facts.days[rooftop_id]
        if state == "sending" or (sent_at is not None and start <= sent_at < end):
            facts.counted[(customer_id, rooftop_id)] += 1


def _timed(rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """Counted rows read back from JSON: their sent_at (ISO 8601 text) as a datetime."""
    for customer_id, rooftop_id, state, sent_at in rows:
        yield [customer_id, rooftop_id, state, sent_at and datetime.fromisoformat(sent_at)]


@lru_cache(maxsize=4)
def _facts_sql(dialect: str) -> tuple[Any, Any, Any]:
    """`batch_facts`' statements for one dialect: the consent ledger, today's counts, and
    on PostgreSQL both in one statement (each as a JSON array; the ledger in id order)."""
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
    if dialect != "postgresql":
        return consent, counted, None

    def as_json(query: Any, names: Sequence[str], *order: Any) -> Any:
        rows = query.subquery()
        fields = func.jsonb_build_array(*(rows.c[name] for name in names))
        ordered = aggregate_order_by(fields, *(rows.c[o] for o in order)) if order else fields
        return select(func.jsonb_agg(ordered)).scalar_subquery()

    ledger_names = [column.name for column in consent.selected_columns]
    both = select(
        as_json(consent.add_columns(ledger.id.label("seq")).order_by(None), ledger_names, "seq"),
        as_json(counted, [column.name for column in counted.selected_columns]),
    )
    return consent, counted, both


def local_day(now: datetime, rooftop: RooftopConfig) -> tuple[datetime, datetime]:
    """The rooftop-local day around `now`, as UTC bounds."""
    local_day = now.astimezone(rooftop.zone).date()
    day_start = datetime.combine(local_day, time(0), tzinfo=rooftop.zone).astimezone(UTC)
    next_day = datetime.combine(
        local_day + timedelta(days=1), time(0), tzinfo=rooftop.zone
    ).astimezone(UTC)
    return day_start, next_day
