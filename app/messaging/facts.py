"""What the send-time policies read for a whole claimed batch, fetched at once.

Consent (and Twilio's carrier blocks) for the batch's phones and the daily cap's
counts for its customers: on PostgreSQL read by the claim's own statement
(`claimed_facts`), on SQLite one query each, built once, the batch's ids bound as one
parameter (`app/messaging/id_lists.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Interval, Table, bindparam, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from app.config import RooftopConfig
from app.customers.carrier import CARRIER
from app.customers.models import Consent
from app.db import one_of_constants
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
    read: ReadFacts | None = None,
) -> BatchFacts:
    """Consent and today's counts for a whole batch: one query each, whatever its rooftops,
    or none when the claim's own statement `read` them (PostgreSQL: `claimed_facts`).

    Both statements are built once (`_facts_sql`) and take the batch's ids as one
    parameter each: a claim pays for its rows, not for building SQL.
    """
    days = {rooftop_id: local_day(now, config) for rooftop_id, config in rooftops.items()}
    facts = BatchFacts(days=days)
    phone_ids = {m.phone_id for m in messages if m.phone_id is not None}
    wanted = {
        (m.customer_id, m.rooftop_id)
        for m in messages
        if m.customer_id is not None and m.rooftop_id in rooftops
    }
    if read is not None:
        _add_consent(facts, read.ledger)
        _add_counted(facts, _timed(read.counted), wanted)
        return facts
    dialect = session.get_bind().dialect.name
    consent_sql, counted_sql = _facts_sql(dialect)
    connection = session.connection()
    # One query for every rooftop of the batch: each has its own local day, so rows from
    # the earliest start to the latest end come back and each is counted against its own.
    counted_parameters = {
        "customers": ids_value({c for c, _r in wanted}, dialect),
        "batch": ids_value([m.id for m in messages], dialect),
        "earliest": min((start for start, _end in days.values()), default=now),
        "latest": max((end for _start, end in days.values()), default=now),
    }
    if phone_ids:
        _add_consent(
            facts,
            connection.execute(consent_sql, {"phones": ids_value(phone_ids, dialect)}).all(),
        )
    if wanted:
        _add_counted(facts, connection.execute(counted_sql, counted_parameters).all(), wanted)
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


# A consent ledger row as both reads hand it to the policies, in this order: `_facts_sql`'s
# columns and `claimed_facts`' JSON arrays.
LEDGER_FIELDS = ("phone_id", "channel", "purpose", "action", "source", "detail")


@lru_cache(maxsize=4)
def _facts_sql(dialect: str) -> tuple[Any, Any]:
    """`batch_facts`' statements for one dialect: the consent ledger and today's counts."""
    # Table columns, not the ORM's attributes: no ORM compile and result set-up.
    ledger = cast(Table, Consent.__table__).c
    outbox = cast(Table, OutboundMessage.__table__).c
    consent = (
        select(*(ledger[name] for name in LEDGER_FIELDS))
        .where(in_ids(ledger.phone_id, "phones", dialect))
        .order_by(ledger.id)
    )
    counted = select(outbox.customer_id, outbox.rooftop_id, outbox.state, outbox.sent_at).where(
        # No rooftop term: SQLite, which cannot tell how many ids a parameter holds,
        # would walk every row of the rooftop instead of the customers' (the loop in
        # `batch_facts` leaves out other rooftops' rows).
        in_ids(outbox.customer_id, "customers", dialect),
        one_of_constants(outbox.kind, AUTOMATIC_KINDS),
        in_ids(outbox.id, "batch", dialect, negate=True),
        or_(
            outbox.state == "sending",
            (outbox.sent_at >= bindparam("earliest", type_=outbox.sent_at.type))
            & (outbox.sent_at < bindparam("latest", type_=outbox.sent_at.type)),
        ),
    )
    return consent, counted


# Any rooftop's local day around `now` (23 to 25 hours long) lies within this of it.
AROUND_NOW = timedelta(hours=25)


@dataclass(frozen=True)
class ReadFacts:
    """A claimed batch's facts as the claim's own statement read them (`claimed_facts`):
    the consent ledger rows of its phones and its customers' counted rows, each once."""

    ledger: list[Sequence[Any]]
    counted: list[list[Any]]

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[int, Any, Any, Any, Any]]) -> ReadFacts:
        """From (id, phone id, its ledger JSON, customer id, its counted JSON) per claimed
        row. A claim that took lapsed rows and pending ones read them in two statements,
        each leaving out only its own rows: the batch's rows are left out here again."""
        claimed = {row[0] for row in rows}
        phones: dict[int, list[Any]] = {}
        customers: dict[int, list[Any]] = {}
        for _id, phone_id, ledger, customer_id, counted in rows:
            if phone_id is not None and ledger:
                phones.setdefault(phone_id, ledger)
            if customer_id is not None and counted:
                customers.setdefault(customer_id, counted)
        return cls(
            ledger=[row for rows in phones.values() for row in rows],
            counted=[
                row[:4] for rows in customers.values() for row in rows if row[4] not in claimed
            ],
        )


def claimed_facts(due: Any, *, now: Any) -> tuple[Any, Any]:
    """PostgreSQL: what `batch_facts` reads, as two JSON columns of the claim's own
    statement (a round trip fewer per claim, each of which a busy dispatcher also waits
    on its send threads for): a claimed row's phone's consent ledger, in id order, and
    its customer's automatic messages being sent or sent within AROUND_NOW of `now`
    (with their ids), the claimed rows (`due`, the claim's CTE) left out. `batch_facts`
    then keeps each rooftop's own day, as it does with its own queries' rows.
    """
    ledger = cast(Table, Consent.__table__).c
    others = cast(Table, OutboundMessage.__table__).alias("counted")
    fields = func.jsonb_build_array(*(ledger[name] for name in LEDGER_FIELDS))
    consent = select(func.jsonb_agg(aggregate_order_by(fields, ledger.id))).where(
        ledger.phone_id == due.c.phone_id
    )
    c, around = others.c, literal(AROUND_NOW, Interval())
    counted = select(
        func.jsonb_agg(
            func.jsonb_build_array(c.customer_id, c.rooftop_id, c.state, c.sent_at, c.id)
        )
    ).where(
        c.customer_id == due.c.customer_id,
        one_of_constants(c.kind, AUTOMATIC_KINDS),
        c.id.not_in(select(due.c.id)),
        or_(
            c.state == "sending",
            (c.sent_at >= now - around) & (c.sent_at < now + around),
        ),
    )
    return consent.scalar_subquery(), counted.scalar_subquery()


def local_day(now: datetime, rooftop: RooftopConfig) -> tuple[datetime, datetime]:
    """The rooftop-local day around `now`, as UTC bounds."""
    local_day = now.astimezone(rooftop.zone).date()
    day_start = datetime.combine(local_day, time(0), tzinfo=rooftop.zone).astimezone(UTC)
    next_day = datetime.combine(
        local_day + timedelta(days=1), time(0), tzinfo=rooftop.zone
    ).astimezone(UTC)
    return day_start, next_day
