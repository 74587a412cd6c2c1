"""Claim and decide, the dispatcher's first step (one transaction per batch).

Due rows are read and locked in one SELECT (joined to their phones): rows whose lease
expired (a crashed worker's) first, then pending rows, oldest first; PostgreSQL skips
rows other workers hold (`FOR UPDATE SKIP LOCKED`), SQLite serialises the claim in its
write lock (`BEGIN IMMEDIATE`). Each row is then sent, held (`not_before`), suppressed,
or expired by the policies, and the decisions are written before the transaction ends:
the rows to send become `sending` with the claim token, a lease (`claimed_until`) and
`send_started_at` (set before anything leaves the building) in one UPDATE; the reason
is written on each row held back. The rows to send get their sender's send slots.

The rows are plain tuples read by statements built once per dialect (`claim_sql.py`),
never ORM objects: a claim costs its rows' decisions, not SQLAlchemy's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.db import Database, utcnow
from app.messaging.channels import sender_for, whatsapp_window_open
from app.messaging.claim_sql import (
    Claimed,
    ClaimedRooftop,
    claim_sql,
    due_batch,
    sending_stopped,
    sending_values,
    verdict_values,
)
from app.messaging.facts import BatchFacts, batch_facts
from app.messaging.id_lists import ids_value
from app.messaging.outcomes import DispatchResult, SendPlan
from app.messaging.pacing import Along, reserve_batch_slots
from app.messaging.policies import (
    Verdict,
    consent_verdict,
    daily_cap_verdict,
    quiet_hours_verdict,
)
from integrations.twilio.base import OutgoingMessage


def claim_and_decide(
    database: Database,
    *,
    token: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    callback: str,
    result: DispatchResult,
    lapsed: bool = True,
) -> tuple[list[SendPlan], int]:
    """Claim due rows and apply the policies in one transaction: (plans to send, rows claimed).

    `lapsed`: look for rows whose lease ran out (a crashed worker's) before pending ones.
    Nothing is claimed while sending is stopped (an open Twilio auth alert).
    """
    with database.transaction() as session:
        connection = session.connection()
        sql = claim_sql(connection.dialect.name)
        rows, rooftops, stopped, read = due_batch(
            connection, sql, now=now, limit=limit, lapsed=lapsed
        )
        if not rows:
            result.stopped = sending_stopped(connection, sql) or result.stopped
            return [], 0
        if stopped is not None:
            result.stopped = stopped  # the rows stay as they were; the commit unlocks them
            return [], 0
        result.count("claimed", len(rows))
        configs = {rooftop_id: r.config for rooftop_id, r in rooftops.items()}
        facts = batch_facts(session, messages=rows, rooftops=configs, now=now, read=read)
        sends: list[Claimed] = []
        written: list[dict[str, Any]] = []  # rows held back, or sent with changed addresses
        claimed_until = now + lease
        for row in rows:
            # The policies read consent, inbound messages and the facts above, none of
            # which this batch's decisions change.
            verdict, decided = _decide(
                session, row, rooftop=rooftops[row.rooftop_id], facts=facts, now=now
            )
            if verdict is None:
                facts.sending(decided)
                sends.append(decided)
                if decided is not row:
                    written.append(sending_values(decided, token, claimed_until, now=now))
                continue
            written.append(verdict_values(decided, verdict, now=now))
            result.count(
                {"defer": "deferred", "suppress": "suppressed", "expire": "expired"}[verdict.action]
            )
        if written:
            connection.execute(sql.decided, written)
        rewritten = {values["b_id"] for values in written}
        unchanged = [row.id for row in sends if row.id not in rewritten]
        # The rows sent as claimed become `sending` in the statement that reserves their
        # send slots (on PostgreSQL: one round trip for both).
        claim: Along | None = None
        if unchanged:
            claim = (
                sql.claim,
                {
                    "ids": ids_value(unchanged, connection.dialect.name),
                    "token": token,
                    "claimed_until": claimed_until,
                    "claimed_at": now,
                },
            )
        plans = _plans(
            session,
            sends,
            rooftops=rooftops,
            token=token,
            callback=callback,
            claimed_until=claimed_until,
            now=now,
            claim=claim,
        )
        return plans, len(rows)


def _decide(
    session: Session, row: Claimed, *, rooftop: ClaimedRooftop, facts: BatchFacts, now: datetime
) -> tuple[Verdict | None, Claimed]:
    """The first policy that holds the message back (None: send it), and the row with the
    addresses it is sent with."""
    config = rooftop.config
    if row.expires_at is not None and row.expires_at <= now:
        return Verdict(
            "expire", f"expired at {row.expires_at:%Y-%m-%d %H:%MZ} before it could be sent"
        ), row
    has_phone = row.phone_textable is not None
    if row.to_address is None and has_phone and row.phone_e164:
        row = row._replace(to_address=row.phone_e164)
    if has_phone and (not row.phone_textable or not row.phone_e164):
        reason = row.phone_not_textable_reason or "no valid number"
        return Verdict("suppress", f"phone not textable: {reason}"), row
    if row.to_address is None:
        return Verdict("suppress", "no recipient address"), row
    row = _resolve_whatsapp(session, row, rooftop=rooftop, now=now)
    assert row.to_address is not None
    recipient_e164 = row.phone_e164 if has_phone else row.to_address.removeprefix("whatsapp:")
    verdict = (
        consent_verdict(session, message=row, rooftop=config, facts=facts)
        or quiet_hours_verdict(
            session, message=row, rooftop=config, recipient_e164=recipient_e164, now=now
        )
        or daily_cap_verdict(session, message=row, rooftop=config, now=now, facts=facts)
    )
    if verdict is not None:
        return verdict, row
    if config.shadow:
        return Verdict("suppress", "shadow mode: not sent"), row
    if row.from_address is None:
        # Other rules enqueue without a sender: the rooftop's for the channel.
        sender = sender_for(rooftop, row.channel)
        if sender is not None:
            row = row._replace(from_address=sender)
    if row.from_address is None and rooftop.messaging_service_sid is None:
        return Verdict("suppress", f"rooftop {rooftop.slug} has no sender for {row.channel}"), row
    return None, row


def _resolve_whatsapp(
    session: Session, row: Claimed, *, rooftop: ClaimedRooftop, now: datetime
) -> Claimed:
    """Free text inside the 24 h window, the approved template outside it, else SMS."""
    if row.channel != "whatsapp":
        return row
    if whatsapp_window_open(session, customer_id=row.customer_id, phone_id=row.phone_id, now=now):
        return row if row.content_sid is None else row._replace(content_sid=None)
    if row.content_sid is not None or row.phone_textable is None or not row.phone_e164:
        return row
    return row._replace(
        channel="sms", to_address=row.phone_e164, from_address=sender_for(rooftop, "sms")
    )


def _plans(
    session: Session,
    sends: Sequence[Claimed],
    *,
    rooftops: dict[int, ClaimedRooftop],
    token: str,
    callback: str,
    claimed_until: datetime,
    now: datetime,
    claim: Along | None,
) -> list[SendPlan]:
    """A plan per row to send, each with its sender's next free slot, reserved for every
    worker at once (with the `claim` UPDATE). Real time, not the injected clock: pacing is
    about the rate Twilio sees.
    """
    wanted: dict[str, tuple[int, float]] = {}
    for row in sends:
        rooftop = rooftops[row.rooftop_id]
        count, _rate = wanted.get(_sender(row, rooftop), (0, 0.0))
        wanted[_sender(row, rooftop)] = (count + 1, rooftop.config.send_rate_per_second)
    slots = {
        sender: iter(times)
        for sender, times in reserve_batch_slots(
            session, wanted=wanted, now=utcnow(), along=claim
        ).items()
    }
    plans = []
    for row in sends:
        rooftop = rooftops[row.rooftop_id]
        sender = _sender(row, rooftop)
        template_send = row.channel == "whatsapp" and row.content_sid is not None
        assert row.to_address is not None  # checked by _decide
        outgoing = OutgoingMessage(
            to=row.to_address,
            from_=row.from_address,
            messaging_service_sid=rooftop.messaging_service_sid
            if row.from_address is None
            else None,
            body=None if template_send else row.body,
            content_sid=row.content_sid if template_send else None,
            content_variables={str(k): str(v) for k, v in (row.content_variables or {}).items()}
            if template_send
            else None,
            status_callback=callback,
        )
        plans.append(
            SendPlan(
                message_id=row.id,
                token=token,
                outgoing=outgoing,
                reconcile=row.maybe_sent,
                created_after=row.send_started_at or now,
                claimed_until=claimed_until,
                sender=sender,
                rate=rooftop.config.send_rate_per_second,
                send_at=next(slots[sender]),
            )
        )
    return plans


def _sender(row: Claimed, rooftop: ClaimedRooftop) -> str:
    """Whom Twilio sends the row from: its number, else the rooftop's Messaging Service."""
    sender = row.from_address or rooftop.messaging_service_sid
    assert sender is not None  # checked by _decide
    return sender
