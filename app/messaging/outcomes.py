"""Recording what became of sends, a batch of them per short transaction.

Every write is guarded by the claim token: a worker whose lease expired and whose
row another worker took finds no row here and writes nothing. Accepted sends (the
common case) are written with one executemany UPDATE per batch; failures and
releases, which touch consent, phones and alerts, row by row.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import (
    Connection,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from app.customers.models import Phone
from app.customers.service import mark_not_textable
from app.db import Database, is_postgres, one_of
from app.messaging.id_lists import ids_value, in_ids
from app.messaging.models import OutboundMessage
from app.messaging.policies import Verdict
from app.messaging.service import (
    AUTH_ALERT_KEY,
    enqueue_sms_fallback,
    revoke_consent_from_carrier,
    state_for_provider_status,
)
from app.ops.alerts import open_alert
from integrations.twilio.base import ErrorKind, OutgoingMessage, SendError, SentMessage

log = logging.getLogger(__name__)

STOPPED_ON_AUTH = "sending stopped: Twilio credentials rejected"
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


@dataclass
class DispatchResult:
    """What one dispatch run did, row by row."""

    claimed: int = 0
    sent: int = 0
    adopted: int = 0
    deferred: int = 0
    suppressed: int = 0
    expired: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    lost_claims: int = 0
    stopped: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + n)


@dataclass(frozen=True)
class SendPlan:
    """One claimed row, ready to leave: what to send and how to check it was not sent already."""

    message_id: int
    token: str
    outgoing: OutgoingMessage
    reconcile: bool
    created_after: datetime
    claimed_until: datetime
    sender: str
    rate: float
    send_at: datetime | None = None  # the sender's send slot, shared by every worker


def backoff(attempt: int, retry_after: float | None) -> timedelta:
    """Wait before attempt number `attempt` + 1: 30 s doubling to 1 h, or Twilio's Retry-After."""
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=retry_after)
    return min(BACKOFF_BASE * (2 ** max(0, attempt - 1)), BACKOFF_MAX)


# The state a policy's decision leaves a row in.
VERDICT_STATES = {"defer": "pending", "expire": "expired", "suppress": "suppressed"}


def apply_verdict(message: OutboundMessage, verdict: Verdict) -> None:
    """Write a policy's decision on the row and give up the claim."""
    message.suppressed_reason = verdict.reason[:200]
    message.claim_token = None
    message.claimed_until = None
    message.state = VERDICT_STATES[verdict.action]
    if verdict.action == "defer":
        assert verdict.not_before is not None
        message.not_before = verdict.not_before
        if message.attempt == 0:
            message.send_started_at = None  # nothing left the building: no lookup needed later


@dataclass(frozen=True)
class SendOutcome:
    """What became of one plan: Twilio holds it (`sent`), refused it (`error`), it was
    given back untouched (`released`), or nothing at all (left to its lease)."""

    plan: SendPlan
    sent: SentMessage | None = None
    adopted: bool = False
    error: SendError | None = None
    released: str | None = None


def record(database: Database, done: list[SendOutcome], *, now: datetime) -> Counter[str]:
    """Write a batch of outcomes in one transaction; returns DispatchResult counters to bump."""
    counts: Counter[str] = Counter()
    settled = [o for o in done if o.sent is not None or o.error is not None or o.released]
    if not settled:
        return counts
    if all(o.sent is not None for o in settled):
        # The common case: Twilio took them all. The token-guarded UPDATE ... RETURNING
        # alone tells which rows are still ours: one statement, no lookup (and lock) of
        # the batch first, and so no transaction around it.
        with database.one_statement() as connection:
            recorded = _record_accepted(connection, settled, now=now)
        for outcome in settled:
            if outcome.plan.message_id in recorded:
                counts["adopted" if outcome.adopted else "sent"] += 1
            else:
                log.warning(
                    "message %s: claim lost before recording its outcome",
                    outcome.plan.message_id,
                )
                counts["lost_claims"] += 1
        return counts
    with database.transaction() as session:
        ours = _still_claimed(session, [o.plan for o in settled])
        accepted: list[SendOutcome] = []
        for outcome in settled:
            plan = outcome.plan
            if plan.message_id not in ours:
                log.warning("message %s: claim lost before recording its outcome", plan.message_id)
                counts["lost_claims"] += 1
            elif outcome.sent is not None:
                accepted.append(outcome)
                counts["adopted" if outcome.adopted else "sent"] += 1
            elif outcome.error is not None:
                counts[_record_failure(session, plan, outcome.error, now=now)] += 1
            else:
                _release(session, plan, reason=outcome.released or STOPPED_ON_AUTH)
                counts["released"] += 1
        if accepted:
            _record_accepted(session.connection(), accepted, now=now)
    return counts


def _still_claimed(session: Session, plans: list[SendPlan]) -> set[int]:
    """Ids of the plans whose rows still carry their claim token, locked until commit."""
    tokens = {plan.message_id: plan.token for plan in plans}
    query = (
        select(OutboundMessage.id, OutboundMessage.claim_token)
        .where(one_of(session, OutboundMessage.id, tokens))
        .order_by(OutboundMessage.id)  # one lock order for every worker: no deadlocks
    )
    if is_postgres(session):
        query = query.with_for_update()
    return {row_id for row_id, token in session.execute(query) if tokens[row_id] == token}


_ACCEPTED_COLUMNS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("id", Integer()),
    ("token", String()),
    ("sid", String()),
    ("status", String()),
    ("state", String()),
    ("segments", Integer()),
    ("note", Text()),
)


@lru_cache(maxsize=4)
def _accepted_from_batch(dialect: str) -> Any:
    """The accepted sends' UPDATE ... FROM (the batch) ... RETURNING id, built once.

    The batch is one JSON text parameter (`batch`: a list of rows in the order of
    `_ACCEPTED_COLUMNS`, encoded by orjson) read back with `jsonb_array_elements`
    (PostgreSQL) or `json_each` (SQLite), and the values every row shares are bind
    parameters: building the expression, a driver binding seven values a row, and
    SQLAlchemy processing them row by row cost more of the dispatcher's CPU than the
    database spends on the statement.
    """
    table = cast(Table, OutboundMessage.__table__)
    batch_json = bindparam("batch", type_=Text())
    if dialect == "postgresql":
        elements = func.jsonb_array_elements(sql_cast(batch_json, JSONB()))
        rows = elements.table_valued("value").render_derived(name="element")
    else:  # SQLite names json_each's columns itself, and takes no list of them
        rows = func.json_each(batch_json).table_valued("value").alias("element")

    def field(index: int) -> Any:
        if dialect == "postgresql":
            return rows.c.value.op("->>", return_type=Text())(literal_column(str(index), Integer()))
        return func.json_extract(rows.c.value, f"$[{index}]")

    batch = select(
        *(
            sql_cast(field(index), kind).label(name)
            for index, (name, kind) in enumerate(_ACCEPTED_COLUMNS)
        )
    ).subquery("batch")
    statement = update(table).where(table.c.id == batch.c.id, table.c.claim_token == batch.c.token)
    if dialect == "postgresql":
        # The ids once more as an array: the planner reads the rows by primary key. It
        # takes the JSON batch for 100 rows whatever it holds, and against a small outbox
        # hashed it and scanned the whole table for every record (a third of the statement).
        statement = statement.where(in_ids(table.c.id, "ids", dialect))
    return statement.values(
        provider_sid=batch.c.sid,
        provider_status=batch.c.status,
        state=batch.c.state,
        num_segments=batch.c.segments,
        error_message=func.coalesce(batch.c.note, table.c.error_message),
        **{
            name: bindparam(name, type_=table.c[name].type)
            for name in ("sent_at", "claim_token", "claimed_until", "suppressed_reason")
        },
    ).returning(table.c.id)


def _record_accepted(
    connection: Connection, accepted: list[SendOutcome], *, now: datetime
) -> set[int]:
    """Twilio holds these messages (new, or found by reconciliation): remember their sids.

    Only rows still carrying their plan's claim token are written; returns their ids.
    One UPDATE ... FROM (the batch) ... RETURNING id: one round trip, one statement
    built once (see `_accepted_from_batch`).
    """
    rows = []
    for outcome in accepted:
        assert outcome.sent is not None
        status = outcome.sent.status or "queued"
        rows.append(
            (
                outcome.plan.message_id,
                outcome.plan.token,
                outcome.sent.sid,
                status,
                state_for_provider_status(status),
                outcome.sent.num_segments,
                ADOPTED_NOTE if outcome.adopted else None,
            )
        )
    dialect = connection.dialect.name
    params = {
        "batch": orjson.dumps(rows).decode(),
        "sent_at": now,
        "claim_token": None,
        "claimed_until": None,
        "suppressed_reason": None,
    }
    if dialect == "postgresql":  # the statement's ids as an array (`_accepted_from_batch`)
        params["ids"] = ids_value((row[0] for row in rows), dialect)
    return set(connection.execute(_accepted_from_batch(dialect), params).scalars().all())


ADOPTED_NOTE = "adopted an existing Twilio message after an ambiguous attempt"


def _claimed_row(session: Session, plan: SendPlan) -> OutboundMessage:
    message = session.scalar(
        select(OutboundMessage).where(
            OutboundMessage.id == plan.message_id, OutboundMessage.claim_token == plan.token
        )
    )
    assert message is not None  # checked and locked by _still_claimed in this transaction
    return message


def _release(session: Session, plan: SendPlan, *, reason: str) -> None:
    """Give a claimed row back untouched (no attempt counted): e.g. the account is stopped."""
    message = _claimed_row(session, plan)
    message.state = "pending"
    message.claim_token = None
    message.claimed_until = None
    message.suppressed_reason = reason[:200]


def _record_failure(session: Session, plan: SendPlan, error: SendError, *, now: datetime) -> str:
    """Map a send error to the row's next state; returns the DispatchResult counter to bump."""
    message = _claimed_row(session, plan)
    message.error_code = error.code
    message.error_message = f"{error.message}"[:2000]
    message.claim_token = None
    message.claimed_until = None
    if error.kind is ErrorKind.AUTH:
        open_alert(
            session,
            key=AUTH_ALERT_KEY,
            message="Twilio rejected the account credentials "
            f"({error.code or error.http_status}); sending is stopped until this alert "
            "is resolved. Check TWILIO_AUTH_TOKEN.",
            now=now,
        )
        message.state = "pending"
        message.suppressed_reason = STOPPED_ON_AUTH
        return "released"
    if not error.permanent:
        return _retry_later(message, error, now=now)
    _apply_permanent(session, message, error, now=now)
    return "failed"


def _retry_later(message: OutboundMessage, error: SendError, *, now: datetime) -> str:
    message.attempt += 1
    if message.attempt >= MAX_ATTEMPTS:
        message.state = "failed"
        message.suppressed_reason = f"gave up after {message.attempt} attempts"
        return "failed"
    resume = now + backoff(message.attempt, error.retry_after)
    if message.expires_at is not None and resume > message.expires_at:
        message.state = "expired"
        message.suppressed_reason = f"stale before retry at {resume:%Y-%m-%d %H:%MZ}"
        return "expired"
    message.state = "pending"
    message.not_before = resume
    message.suppressed_reason = (
        f"retry {message.attempt} at {resume:%H:%M:%SZ} ({error.kind.value})"
    )
    return "retried"


def _apply_permanent(
    session: Session, message: OutboundMessage, error: SendError, *, now: datetime
) -> None:
    message.state = "failed"
    phone = session.get(Phone, message.phone_id) if message.phone_id else None
    if error.kind is ErrorKind.UNSUBSCRIBED and phone is not None:
        revoke_consent_from_carrier(session, phone=phone, rooftop_id=message.rooftop_id)
    elif error.kind in (ErrorKind.INVALID_NUMBER, ErrorKind.NOT_TEXTABLE) and phone is not None:
        mark_not_textable(session, phone=phone, reason=f"twilio {error.code}: {error.message}")
    elif error.kind is ErrorKind.ROUTE_DISABLED:
        open_alert(
            session,
            key=f"twilio:route:{error.code}",
            message=f"Twilio refused a route ({error.code}): {error.message}. "
            "Enable the region or route in the Twilio console.",
            now=now,
        )
    enqueue_sms_fallback(
        session, message=message, phone=phone, reason=f"WhatsApp refused ({error.code})"
    )
