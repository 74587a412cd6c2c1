"""Recording what became of a send, each in its own short transaction.

Every write is guarded by the claim token: a worker whose lease expired and whose
row another worker took finds no row here and writes nothing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.customers.models import Phone
from app.customers.service import mark_not_textable
from app.db import is_postgres
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.messaging.policies import Verdict
from app.messaging.service import (
    AUTH_ALERT_KEY,
    enqueue_sms_fallback,
    open_alert,
    revoke_consent_from_carrier,
    state_for_provider_status,
)
from integrations.twilio.base import ErrorKind, SendError, SentMessage

if TYPE_CHECKING:
    from app.messaging.dispatcher import SendPlan

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


def backoff(attempt: int, retry_after: float | None) -> timedelta:
    """Wait before attempt number `attempt` + 1: 30 s doubling to 1 h, or Twilio's Retry-After."""
    if retry_after is not None and retry_after > 0:
        return timedelta(seconds=retry_after)
    return min(BACKOFF_BASE * (2 ** max(0, attempt - 1)), BACKOFF_MAX)


def apply_verdict(message: OutboundMessage, verdict: Verdict) -> None:
    """Write a policy's decision on the row and give up the claim."""
    message.suppressed_reason = verdict.reason[:200]
    message.claim_token = None
    message.claimed_until = None
    if verdict.action == "defer":
        assert verdict.not_before is not None
        message.state = "pending"
        message.not_before = verdict.not_before
        if message.attempt == 0:
            message.send_started_at = None  # nothing left the building: no lookup needed later
    elif verdict.action == "expire":
        message.state = "expired"
    else:
        message.state = "suppressed"


def _claimed_row(session: Session, plan: SendPlan) -> OutboundMessage | None:
    query = select(OutboundMessage).where(
        OutboundMessage.id == plan.message_id, OutboundMessage.claim_token == plan.token
    )
    if is_postgres(session):
        query = query.with_for_update()
    return session.scalar(query)


def record_accepted(
    database: Database, plan: SendPlan, sent: SentMessage, *, adopted: bool, now: datetime
) -> str:
    """Twilio holds the message (new, or found by reconciliation): remember its sid."""
    with database.transaction() as session:
        message = _claimed_row(session, plan)
        if message is None:
            log.warning("message %s: claim lost before recording sid %s", plan.message_id, sent.sid)
            return "lost_claims"
        message.provider_sid = sent.sid
        message.provider_status = sent.status or "queued"
        message.state = state_for_provider_status(message.provider_status)
        message.num_segments = sent.num_segments
        message.sent_at = now
        message.claim_token = None
        message.claimed_until = None
        message.suppressed_reason = None
        if adopted:
            message.error_message = "adopted an existing Twilio message after an ambiguous attempt"
        return "adopted" if adopted else "sent"


def release(database: Database, plan: SendPlan, *, reason: str) -> str:
    """Give a claimed row back untouched (no attempt counted): e.g. the account is stopped."""
    with database.transaction() as session:
        message = _claimed_row(session, plan)
        if message is None:
            return "lost_claims"
        message.state = "pending"
        message.claim_token = None
        message.claimed_until = None
        message.suppressed_reason = reason[:200]
        return "released"


def record_failure(
    database: Database,
    plan: SendPlan,
    error: SendError,
    *,
    now: datetime,
    auth_failed: threading.Event,
) -> str:
    """Map a send error to the row's next state; returns the DispatchResult counter to bump."""
    with database.transaction() as session:
        message = _claimed_row(session, plan)
        if message is None:
            return "lost_claims"
        message.error_code = error.code
        message.error_message = f"{error.message}"[:2000]
        message.claim_token = None
        message.claimed_until = None
        if error.kind is ErrorKind.AUTH:
            auth_failed.set()
            open_alert(
                session,
                key=AUTH_ALERT_KEY,
                message="Twilio rejected the account credentials "
                f"({error.code or error.http_status}); sending is stopped until this alert "
                "is resolved. Check TWILIO_AUTH_TOKEN.",
            )
            message.state = "pending"
            message.suppressed_reason = "sending stopped: Twilio credentials rejected"
            return "released"
        if not error.permanent:
            return _retry_later(message, error, now=now)
        _apply_permanent(session, message, error)
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


def _apply_permanent(session: Session, message: OutboundMessage, error: SendError) -> None:
    message.state = "failed"
    phone = session.get(Phone, message.phone_id) if message.phone_id else None
    if error.kind is ErrorKind.UNSUBSCRIBED and phone is not None:
        revoke_consent_from_carrier(session, phone=phone)
    elif error.kind in (ErrorKind.INVALID_NUMBER, ErrorKind.NOT_TEXTABLE) and phone is not None:
        mark_not_textable(session, phone=phone, reason=f"twilio {error.code}: {error.message}")
    elif error.kind is ErrorKind.ROUTE_DISABLED:
        open_alert(
            session,
            key=f"twilio:route:{error.code}",
            message=f"Twilio refused a route ({error.code}): {error.message}. "
            "Enable the region or route in the Twilio console.",
        )
    if message.channel == "whatsapp" and phone is not None and phone.e164 and phone.textable:
        rooftop = session.get(Rooftop, message.rooftop_id)
        enqueue_sms_fallback(
            session,
            message=message,
            sms_from=rooftop.sms_from if rooftop else None,
            e164=phone.e164,
            reason=f"WhatsApp refused ({error.code})",
        )
