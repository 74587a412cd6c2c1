"""Claim and decide, the dispatcher's first step (one transaction per batch).

Due rows become `sending` with a claim token and a lease (`claimed_until`) in one
UPDATE ... RETURNING; PostgreSQL skips rows other workers hold (`FOR UPDATE SKIP
LOCKED`), SQLite serialises the claim in its write lock (`BEGIN IMMEDIATE`). Rows
whose lease expired (a crashed worker) are claimed again. `send_started_at` is set
here, before anything leaves the building. In the same transaction each row is sent,
held (`not_before`), suppressed, or expired by the policies; the reason is written on
the row, and the rows to send get their sender's send slots.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, literal, select, update
from sqlalchemy.orm import Session

from app.config import RooftopConfig
from app.customers.models import Phone
from app.db import is_postgres, one_of, utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging import outcomes
from app.messaging.channels import sender_for, sms_recipient, whatsapp_window_open
from app.messaging.models import OutboundMessage
from app.messaging.outcomes import DispatchResult, SendPlan
from app.messaging.pacing import reserve_batch_slots
from app.messaging.policies import (
    BatchFacts,
    Verdict,
    batch_facts,
    consent_verdict,
    daily_cap_verdict,
    quiet_hours_verdict,
)
from app.messaging.service import sending_stopped
from integrations.twilio.base import OutgoingMessage


def claim_due(
    session: Session, *, token: str, now: datetime, limit: int, lease: timedelta
) -> list[tuple[OutboundMessage, bool]]:
    """Claim up to `limit` due rows for `token`, oldest first; rows other workers hold are skipped.

    Returns each claimed row (now `sending`, with token, lease and `send_started_at`)
    with whether it may already exist at Twilio (an earlier attempt, or a send that
    started and never got recorded). Three statements at most whatever the batch size:
    the due ids, locked, then one UPDATE ... RETURNING of the rows. Commit promptly.
    """
    reconcile = _due_ids(session, now=now, limit=limit)
    if not reconcile:
        return []
    started = literal(now, OutboundMessage.send_started_at.type)
    rows = list(
        session.scalars(
            update(OutboundMessage)
            .where(one_of(session, OutboundMessage.id, reconcile))
            .values(
                state="sending",
                claim_token=token,
                claimed_until=now + lease,
                send_started_at=func.coalesce(OutboundMessage.send_started_at, started),
            )
            .returning(OutboundMessage)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    )
    rows.sort(key=lambda row: (row.not_before, row.id))
    return [(row, reconcile[row.id]) for row in rows]


def _due_ids(session: Session, *, now: datetime, limit: int) -> dict[int, bool]:
    """Up to `limit` due ids, locked: rows whose lease lapsed (a crashed worker's), then
    pending rows, oldest first; each with whether it may already exist at Twilio.

    Two queries rather than one with OR: each walks the (state, not_before) index in
    order and stops at the limit, where an OR sorts every due row on every claim (a
    backlog of 50,000 texts after an outage would be sorted 500 times).
    """
    maybe_sent = (OutboundMessage.attempt > 0) | OutboundMessage.send_started_at.is_not(None)
    lapsed = select(OutboundMessage.id, maybe_sent).where(
        OutboundMessage.state.in_(("claimed", "sending")), OutboundMessage.claimed_until < now
    )
    pending = select(OutboundMessage.id, maybe_sent).where(
        OutboundMessage.state == "pending", OutboundMessage.not_before <= now
    )
    found: dict[int, bool] = {}
    for query in (lapsed, pending):
        query = query.order_by(OutboundMessage.not_before, OutboundMessage.id)
        query = query.limit(limit - len(found))
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        found.update((row_id, bool(flag)) for row_id, flag in session.execute(query))
        if len(found) >= limit:
            break
    return found


def claim_and_decide(
    database: Database,
    *,
    token: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    callback: str,
    result: DispatchResult,
) -> tuple[list[SendPlan], int]:
    """Claim due rows and apply the policies in one transaction: (plans to send, rows claimed)."""
    with database.transaction() as session:
        stopped = sending_stopped(session)
        if stopped is not None:
            result.stopped = stopped
            return [], 0
        claimed = claim_due(session, token=token, now=now, limit=limit, lease=lease)
        rows = [row for row, _ in claimed]
        result.count("claimed", len(rows))
        # One query each for the batch's rooftops and phones, held here: the session's
        # identity map is weak, so per-row session.get() would query again and again.
        rooftops = {
            r.id: r
            for r in session.scalars(
                select(Rooftop).where(Rooftop.id.in_({row.rooftop_id for row in rows}))
            )
        }
        phone_ids = {row.phone_id for row in rows if row.phone_id is not None}
        phones: dict[int, Phone] = {}
        if phone_ids:
            found = session.scalars(select(Phone).where(one_of(session, Phone.id, phone_ids)))
            phones = {p.id: p for p in found}
        configs = {i: r.settings for i, r in rooftops.items()}
        # Consent and the daily cap's counts for the whole batch, in a query or two.
        facts = batch_facts(session, messages=rows, rooftops=configs, now=now)
        batch = _Batch(rooftops, configs, phones, facts)
        plans: list[SendPlan] = []
        for message, reconcile in claimed:
            # The policies read consent, inbound messages and the facts above, none of which
            # this batch's rows change: the rows' changes are flushed once, at commit.
            with session.no_autoflush:
                verdict, plan = _decide(
                    session,
                    message,
                    batch=batch,
                    now=now,
                    callback=callback,
                    token=token,
                    reconcile=reconcile,
                )
            if plan is not None:
                facts.sending(message)
                plans.append(plan)
                continue
            assert verdict is not None
            outcomes.apply_verdict(message, verdict)
            result.count(
                {"defer": "deferred", "suppress": "suppressed", "expire": "expired"}[verdict.action]
            )
        return _with_send_slots(session, plans), len(rows)


def _with_send_slots(session: Session, plans: list[SendPlan]) -> list[SendPlan]:
    """Give each plan its sender's next free slot, reserved for every worker at once.

    Real time, not the injected clock: pacing is about the rate Twilio sees.
    """
    by_sender: dict[str, list[int]] = {}
    for index, plan in enumerate(plans):
        by_sender.setdefault(plan.sender, []).append(index)
    wanted = {
        sender: (len(indexes), plans[indexes[0]].rate) for sender, indexes in by_sender.items()
    }
    slots = reserve_batch_slots(session, wanted=wanted, now=utcnow())
    slotted = list(plans)
    for sender, indexes in by_sender.items():
        for index, slot in zip(indexes, slots[sender], strict=True):
            slotted[index] = replace(plans[index], send_at=slot)
    return slotted


@dataclass(frozen=True)
class _Batch:
    """What a claimed batch's rows share, loaded once per batch."""

    rooftops: dict[int, Rooftop]
    configs: dict[int, RooftopConfig]
    phones: dict[int, Phone]
    facts: BatchFacts


def _decide(
    session: Session,
    message: OutboundMessage,
    *,
    batch: _Batch,
    now: datetime,
    callback: str,
    token: str,
    reconcile: bool,
) -> tuple[Verdict | None, SendPlan | None]:
    """The first policy that holds the message back, or the plan to send it."""
    rooftop = batch.rooftops[message.rooftop_id]
    config = batch.configs[message.rooftop_id]
    if message.expires_at is not None and message.expires_at <= now:
        return Verdict(
            "expire", f"expired at {message.expires_at:%Y-%m-%d %H:%MZ} before it could be sent"
        ), None
    phone = batch.phones.get(message.phone_id) if message.phone_id else None
    if message.to_address is None and phone is not None and phone.e164:
        message.to_address = phone.e164
    if phone is not None and (not phone.textable or not phone.e164):
        return Verdict(
            "suppress", f"phone not textable: {phone.not_textable_reason or 'no valid number'}"
        ), None
    if message.to_address is None:
        return Verdict("suppress", "no recipient address"), None
    _resolve_whatsapp(session, message, phone=phone, rooftop=rooftop, now=now)
    recipient_e164 = (
        phone.e164 if phone is not None else message.to_address.removeprefix("whatsapp:")
    )
    for verdict in (
        consent_verdict(session, message=message, rooftop=config, facts=batch.facts),
        quiet_hours_verdict(
            session, message=message, rooftop=config, recipient_e164=recipient_e164, now=now
        ),
        daily_cap_verdict(session, message=message, rooftop=config, now=now, facts=batch.facts),
    ):
        if verdict is not None:
            return verdict, None
    if config.shadow:
        return Verdict("suppress", "shadow mode: not sent"), None
    if message.from_address is None:
        # Other rules enqueue without a sender: the rooftop's for the channel.
        message.from_address = sender_for(rooftop, message.channel)
    use_service = message.from_address is None
    sender = message.from_address or rooftop.messaging_service_sid
    if sender is None:
        return Verdict(
            "suppress", f"rooftop {rooftop.slug} has no sender for {message.channel}"
        ), None
    template_send = message.channel == "whatsapp" and message.content_sid is not None
    outgoing = OutgoingMessage(
        to=message.to_address,
        from_=message.from_address,
        messaging_service_sid=rooftop.messaging_service_sid if use_service else None,
        body=None if template_send else message.body,
        content_sid=message.content_sid if template_send else None,
        content_variables={str(k): str(v) for k, v in (message.content_variables or {}).items()}
        if template_send
        else None,
        status_callback=callback,
    )
    assert message.send_started_at is not None and message.claimed_until is not None
    return None, SendPlan(
        message_id=message.id,
        token=token,
        outgoing=outgoing,
        reconcile=reconcile,
        created_after=message.send_started_at,
        claimed_until=message.claimed_until,
        sender=sender,
        rate=config.send_rate_per_second,
    )


def _resolve_whatsapp(
    session: Session,
    message: OutboundMessage,
    *,
    phone: Phone | None,
    rooftop: Rooftop,
    now: datetime,
) -> None:
    """Free text inside the 24 h window, the approved template outside it, else SMS."""
    if message.channel != "whatsapp":
        return
    if whatsapp_window_open(
        session, customer_id=message.customer_id, phone_id=message.phone_id, now=now
    ):
        message.content_sid = None
        return
    if message.content_sid is not None:
        return
    if phone is None or not phone.e164:
        return
    recipient = sms_recipient(phone, rooftop)
    message.channel = "sms"
    message.to_address = recipient.to_address
    message.from_address = recipient.from_address
