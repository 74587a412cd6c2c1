"""The outbox: putting messages in it once per dedupe key, and what happens to them after."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.customers.carrier import record_carrier_state, sender_key
from app.customers.models import Phone
from app.customers.service import mark_not_textable, revoke_all
from app.db import chunks, one_of, utcnow
from app.dealers.models import Rooftop
from app.messaging.carrier_errors import UNREACHABLE, alert_operator, plan_unreachable_retry
from app.messaging.models import EarlyStatus, OutboundMessage
from app.ops.models import Alert
from integrations.twilio.base import callback_error_marks_phone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageRequest:
    """Something Pitwall means to tell a customer. Rendering and policy come later."""

    rooftop_id: int
    customer_id: int | None
    phone_id: int | None
    kind: str  # status | followup | reply | textback | watchdog
    purpose: str  # status | marketing | conversational
    dedupe_key: str
    body: str | None = None
    template: str | None = None
    repair_order_id: int | None = None
    stage: str | None = None
    channel: str = "sms"
    to_address: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, Any] | None = None
    not_before: datetime | None = None
    expires_at: datetime | None = None
    created_by_user_id: int | None = None


def enqueue(session: Session, request: MessageRequest) -> OutboundMessage | None:
    """Add a message to the outbox unless one with the same dedupe key exists.

    Returns the new row, or None when the key was already used (the caller's rule
    already fired, e.g. on an earlier poll).
    """
    existing = session.scalar(
        select(OutboundMessage.id).where(OutboundMessage.dedupe_key == request.dedupe_key)
    )
    if existing is not None:
        return None
    message = OutboundMessage(
        rooftop_id=request.rooftop_id,
        customer_id=request.customer_id,
        phone_id=request.phone_id,
        repair_order_id=request.repair_order_id,
        kind=request.kind,
        purpose=request.purpose,
        stage=request.stage,
        template=request.template,
        dedupe_key=request.dedupe_key,
        channel=request.channel,
        to_address=request.to_address,
        body=request.body,
        content_sid=request.content_sid,
        content_variables=request.content_variables,
        not_before=request.not_before or utcnow(),
        expires_at=request.expires_at,
        created_by_user_id=request.created_by_user_id,
        state="pending",
    )
    session.add(message)
    session.flush()
    return message


AUTH_ALERT_KEY = "twilio:auth"

# Provider statuses in the order a message moves through them; failures are final.
_STATUS_RANK = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
}
_FINAL_PROVIDER_STATUSES = ("failed", "undelivered", "canceled")
# Our state for each provider status: the message is with Twilio until it is sent.
_STATE_FOR_STATUS = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "undelivered",
    "canceled": "canceled",
}


def state_for_provider_status(status: str) -> str:
    """Pitwall's outbox state for a Twilio message status (unknown ones count as queued)."""
    return _STATE_FOR_STATUS.get(status, "queued")


def used_dedupe_keys(session: Session, keys: Collection[str]) -> set[str]:
    """The keys among `keys` the outbox already holds (`enqueue`'s check, for a page)."""
    used: set[str] = set()
    for chunk in chunks(sorted(set(keys))):
        used.update(
            session.scalars(
                select(OutboundMessage.dedupe_key).where(
                    one_of(session, OutboundMessage.dedupe_key, chunk)
                )
            )
        )
    return used


def pending_status_messages(
    session: Session, repair_order_ids: Collection[int]
) -> dict[int, list[OutboundMessage]]:
    """RO id -> its status messages not yet claimed: what a newer stage supersedes."""
    pending: dict[int, list[OutboundMessage]] = {}
    for chunk in chunks(sorted(set(repair_order_ids))):
        for message in session.scalars(
            select(OutboundMessage).where(
                one_of(session, OutboundMessage.repair_order_id, chunk),
                OutboundMessage.kind == "status",
                OutboundMessage.state == "pending",
            )
        ):
            assert message.repair_order_id is not None
            pending.setdefault(message.repair_order_id, []).append(message)
    return pending


def supersede(messages: Iterable[OutboundMessage], *, reason: str) -> None:
    """Mark pending messages superseded, saying by what."""
    for message in messages:
        message.state = "superseded"
        message.suppressed_reason = reason[:200]


def enqueue_sms_fallback(
    session: Session, *, message: OutboundMessage, phone: Phone | None, reason: str
) -> OutboundMessage | None:
    """Queue the one SMS copy of a WhatsApp message that could not be delivered.

    Only to a textable number; from the rooftop's SMS sender. The dedupe key makes it
    once: a repeated failure callback finds the key taken.
    """
    if message.channel != "whatsapp" or message.fallback_of_id is not None or not message.body:
        return None
    if phone is None or not phone.e164 or not phone.textable:
        return None
    rooftop = session.get(Rooftop, message.rooftop_id)
    fallback = enqueue(
        session,
        _again(
            message,
            dedupe_key=f"{message.dedupe_key}:sms-fallback",
            channel="sms",
            to_address=phone.e164,
            content_sid=None,
            content_variables=None,
        ),
    )
    if fallback is not None:
        fallback.from_address = rooftop.sms_from if rooftop else None
        fallback.fallback_of_id = message.id
        fallback.suppressed_reason = f"SMS fallback: {reason}"
    return fallback


def revoke_consent_from_carrier(session: Session, *, phone: Phone, rooftop_id: int) -> None:
    """Twilio refused with 21610 (the number texted STOP): revoke both purposes in the ledger,
    and note that Twilio blocks this rooftop's sender, so nothing more is tried until START."""
    revoke_all(session, phone=phone, channel="sms", source="twilio:21610")
    rooftop = session.get(Rooftop, rooftop_id)
    if rooftop is not None:
        record_carrier_state(
            session,
            phone=phone,
            sender=sender_key(rooftop.settings),
            blocked=True,
            source="twilio:21610",
        )


def claim_credentials_check(session: Session, *, now: datetime, every: timedelta) -> bool:
    """While sending is stopped, let one worker per `every` re-check the credentials."""
    claimed = session.execute(
        update(Alert)
        .where(
            Alert.key == AUTH_ALERT_KEY,
            Alert.resolved_at.is_(None),
            or_(Alert.last_checked_at.is_(None), Alert.last_checked_at <= now - every),
            Alert.opened_at <= now - every,
        )
        .values(last_checked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(claimed, "rowcount", 0) == 1)


def resolve_auth_alert(session: Session, *, now: datetime) -> None:
    """Twilio accepts the credentials again: sending resumes."""
    session.execute(
        update(Alert)
        .where(Alert.key == AUTH_ALERT_KEY, Alert.resolved_at.is_(None))
        .values(resolved_at=now)
        .execution_options(synchronize_session=False)
    )


def sending_stopped(session: Session) -> str | None:
    """Why sending is stopped for the account (an open Twilio auth alert), or None."""
    alert = session.get(Alert, AUTH_ALERT_KEY)
    if alert is None or alert.resolved_at is not None:
        return None
    return alert.message


@dataclass(frozen=True)
class StatusUpdate:
    """A provider status report for one message (a status callback or a fetch)."""

    sid: str
    status: str
    error_code: int | None = None
    error_message: str | None = None


def apply_provider_status(session: Session, update: StatusUpdate) -> str:
    """Move a message forward to the reported status; never backward; idempotent.

    Returns what happened: "unknown", "ignored" (old or repeated news) or "updated".
    A failed WhatsApp message gets one SMS fallback; 30003/30005/30006 mark the phone.
    """
    message = session.scalar(
        select(OutboundMessage).where(OutboundMessage.provider_sid == update.sid)
    )
    if message is None:
        return "unknown"
    current = message.provider_status or "queued"
    if current in _FINAL_PROVIDER_STATUSES or message.state in ("failed", "undelivered"):
        return "ignored"
    current_rank = _STATUS_RANK.get(current, 0)
    if update.status in _FINAL_PROVIDER_STATUSES:
        # A failure after delivery is not something Twilio reports; keep what we know.
        if current_rank >= _STATUS_RANK["delivered"]:
            return "ignored"
    elif _STATUS_RANK.get(update.status, 0) <= current_rank:
        return "ignored"
    now = utcnow()
    message.provider_status = update.status
    message.state = state_for_provider_status(update.status)
    if update.status in ("delivered", "read") and message.delivered_at is None:
        message.delivered_at = now
    if update.status in _FINAL_PROVIDER_STATUSES:
        _record_delivery_failure(session, message, update)
    return "updated"


# How long a callback for a SID Pitwall has not recorded is kept: a send is recorded
# within seconds, so one still unknown after this is not ours (another system on the
# account, or a message whose row is gone).
EARLY_STATUS_KEPT = timedelta(hours=1)


def hold_early_status(session: Session, update: StatusUpdate, *, now: datetime) -> None:
    """Keep a callback whose message SID is not recorded yet (see `apply_early_statuses`)."""
    session.add(
        EarlyStatus(
            provider_sid=update.sid[:64],
            status=update.status[:20],
            error_code=update.error_code,
            error_message=update.error_message,
            received_at=now,
        )
    )


def apply_early_statuses(session: Session, *, now: datetime) -> int:
    """Apply the held callbacks whose sends are now recorded, in the order they came;
    forget those older than `EARLY_STATUS_KEPT`. How many were applied."""
    held = session.scalars(
        select(EarlyStatus)
        .join(OutboundMessage, OutboundMessage.provider_sid == EarlyStatus.provider_sid)
        .order_by(EarlyStatus.id)
        .limit(1000)
        .with_for_update(of=EarlyStatus, skip_locked=True)  # another worker's: left to it
    ).all()
    for row in held:
        update = StatusUpdate(row.provider_sid, row.status, row.error_code, row.error_message)
        apply_provider_status(session, update)
    if held:
        session.execute(delete(EarlyStatus).where(EarlyStatus.id.in_([row.id for row in held])))
    stale = session.execute(
        delete(EarlyStatus).where(EarlyStatus.received_at < now - EARLY_STATUS_KEPT)
    )
    if stale.rowcount:  # type: ignore[attr-defined]
        log.warning("dropped %s status callbacks for messages never recorded", stale.rowcount)  # type: ignore[attr-defined]
    return len(held)


def _record_delivery_failure(
    session: Session, message: OutboundMessage, update: StatusUpdate
) -> None:
    message.error_code = update.error_code
    message.error_message = update.error_message or f"Twilio reports {update.status}"
    phone = session.get(Phone, message.phone_id) if message.phone_id else None
    if phone is not None and callback_error_marks_phone(update.error_code):
        mark_not_textable(
            session, phone=phone, reason=f"twilio {update.error_code}: carrier says not textable"
        )
    now = utcnow()
    if update.error_code == UNREACHABLE:
        _retry_unreachable(session, message, now=now)
    elif update.error_code is not None:
        alert_operator(session, message, update.error_code, now=now)
    enqueue_sms_fallback(
        session,
        message=message,
        phone=phone,
        reason=f"WhatsApp {update.status} ({update.error_code or 'no code'})",
    )


def _retry_unreachable(session: Session, message: OutboundMessage, *, now: datetime) -> None:
    """The handset was off: the same text again later, within its validity (never the phone
    marked untextable); the failed row says when, so staff can see it."""
    planned = plan_unreachable_retry(message, now=now)
    if planned is None:
        message.suppressed_reason = "handset unreachable (30003); no time left to try again"
        return
    key, resume = planned
    retry = enqueue(session, _again(message, dedupe_key=key, not_before=resume))
    if retry is not None:
        retry.from_address = message.from_address
        message.suppressed_reason = f"handset unreachable (30003); trying again {resume:%H:%MZ}"


def _again(message: OutboundMessage, *, dedupe_key: str, **changes: Any) -> MessageRequest:
    """The same text once more (a retry, an SMS fallback), under its own dedupe key."""
    return replace(
        MessageRequest(
            rooftop_id=message.rooftop_id,
            customer_id=message.customer_id,
            phone_id=message.phone_id,
            kind=message.kind,
            purpose=message.purpose,
            dedupe_key=dedupe_key,
            body=message.body,
            template=message.template,
            repair_order_id=message.repair_order_id,
            stage=message.stage,
            channel=message.channel,
            to_address=message.to_address,
            content_sid=message.content_sid,
            content_variables=message.content_variables,
            expires_at=message.expires_at,
        ),
        **changes,
    )
