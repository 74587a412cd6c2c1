"""The dispatcher: claim due outbox rows, apply policies, send through the gateway, record.

A send is three short steps and never holds a database lock across the network:

1. claim (one transaction): due rows become `claimed` with a claim token and a
   lease (`claimed_until`); PostgreSQL skips rows other workers hold
   (`FOR UPDATE SKIP LOCKED`), SQLite serialises the claim in its write lock
   (`BEGIN IMMEDIATE`). Rows whose lease expired (a crashed worker) are claimed
   again. `send_started_at` is set here, before anything leaves the building.
2. policies (one transaction): each claimed row is sent, held (`not_before`),
   suppressed, or expired; the reason is written on the row.
3. send outside any transaction, in a bounded thread pool, then record the
   outcome in its own transaction guarded by the claim token: a worker that
   lost its claim writes nothing.

Twilio has no idempotency key, so a row that may already exist at Twilio (an
earlier ambiguous attempt, or a crash after `send_started_at`) is looked up in
Twilio's message list first, and the existing sid adopted when found.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.customers.models import Phone
from app.db import is_postgres, utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging import outcomes
from app.messaging.channels import sender_for, sms_recipient, whatsapp_window_open
from app.messaging.models import OutboundMessage
from app.messaging.policies import (
    PACER,
    Verdict,
    consent_verdict,
    daily_cap_verdict,
    quiet_hours_verdict,
)
from app.messaging.service import (
    claim_credentials_check,
    resolve_auth_alert,
    sending_stopped,
)
from integrations.twilio.base import MessageGateway, OutgoingMessage, SendError

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
# Do not start a send with less lease than this left: another worker may take the row.
LEASE_SAFETY = timedelta(seconds=30)
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"

Clock = Callable[[], datetime]
CREDENTIALS_RECHECK = timedelta(minutes=1)


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

    def count(self, outcome: str) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)


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


def dispatch_due(
    database: Database,
    *,
    gateway: MessageGateway,
    public_url: str,
    worker_id: str,
    clock: Clock = utcnow,
    batch_size: int = 50,
    concurrency: int = 4,
    lease: timedelta = DEFAULT_LEASE,
) -> DispatchResult:
    """Send up to `batch_size` due messages; a unit of work that owns its transactions.

    Keep `batch_size / send_rate_per_second` well under `lease` so pacing never
    outlives a claim.
    """
    result = DispatchResult()
    token = str(uuid.uuid4())
    claimed = _claim(
        database, token=token, now=clock(), limit=batch_size, lease=lease, result=result
    )
    if result.stopped and _credentials_accepted_again(database, gateway=gateway, now=clock()):
        result.stopped = None
        claimed = _claim(
            database, token=token, now=clock(), limit=batch_size, lease=lease, result=result
        )
    if not claimed:
        return result
    log.debug("worker %s claimed %d messages (token %s)", worker_id, len(claimed), token)
    callback = public_url.rstrip("/") + STATUS_CALLBACK_PATH
    plans = _apply_policies(
        database, token=token, claimed=claimed, now=clock(), callback=callback, result=result
    )
    auth_failed = threading.Event()

    def run(plan: SendPlan) -> None:
        try:
            _send(
                database, plan, gateway=gateway, clock=clock, auth_failed=auth_failed, result=result
            )
        except Exception:
            # The row keeps its claim and lease; another run reconciles it after the lease.
            log.exception(
                "worker %s: message %s: unexpected error while sending", worker_id, plan.message_id
            )

    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="pitwall-send"
    ) as pool:
        list(pool.map(run, plans))
    if auth_failed.is_set():
        result.stopped = "Twilio rejected the credentials (20003)"
    return result


def _credentials_accepted_again(
    database: Database, *, gateway: MessageGateway, now: datetime
) -> bool:
    """Sending stopped on rejected credentials: once a minute one worker asks Twilio again.

    Fixing TWILIO_AUTH_TOKEN (and restarting) is all an operator has to do.
    """
    with database.transaction() as session:
        if not claim_credentials_check(session, now=now, every=CREDENTIALS_RECHECK):
            return False
    try:
        gateway.check_credentials()
    except SendError as exc:
        log.warning("Twilio still rejects the credentials: %s", exc)
        return False
    with database.transaction() as session:
        resolve_auth_alert(session, now=now)
    log.info("Twilio accepts the credentials again; sending resumes")
    return True


def _claim(
    database: Database,
    *,
    token: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    result: DispatchResult,
) -> dict[int, bool]:
    """Claim due rows; return {message id: may already exist at Twilio}."""
    with database.transaction() as session:
        stopped = sending_stopped(session)
        if stopped is not None:
            result.stopped = stopped
            return {}
        due = or_(
            and_(OutboundMessage.state == "pending", OutboundMessage.not_before <= now),
            and_(
                OutboundMessage.state.in_(("claimed", "sending")),
                OutboundMessage.claimed_until < now,
            ),
        )
        query = (
            select(OutboundMessage)
            .where(due)
            .order_by(OutboundMessage.not_before, OutboundMessage.id)
            .limit(limit)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        claimed: dict[int, bool] = {}
        for row in rows:
            claimed[row.id] = row.attempt > 0 or row.send_started_at is not None
            row.state = "claimed"
            row.claim_token = token
            row.claimed_until = now + lease
            row.send_started_at = row.send_started_at or now
        result.claimed = len(rows)
        return claimed


def _apply_policies(
    database: Database,
    *,
    token: str,
    claimed: dict[int, bool],
    now: datetime,
    callback: str,
    result: DispatchResult,
) -> list[SendPlan]:
    plans: list[SendPlan] = []
    with database.transaction() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.id.in_(claimed), OutboundMessage.claim_token == token)
            .order_by(OutboundMessage.not_before, OutboundMessage.id)
        ).all()
        for message in rows:
            verdict, plan = _decide(session, message, now=now, callback=callback, token=token)
            if plan is not None:
                message.state = "sending"
                plans.append(replace(plan, reconcile=claimed[message.id]))
                continue
            assert verdict is not None
            outcomes.apply_verdict(message, verdict)
            result.count(
                {"defer": "deferred", "suppress": "suppressed", "expire": "expired"}[verdict.action]
            )
    return plans


def _decide(
    session: Session, message: OutboundMessage, *, now: datetime, callback: str, token: str
) -> tuple[Verdict | None, SendPlan | None]:
    """The first policy that holds the message back, or the plan to send it."""
    rooftop = session.get(Rooftop, message.rooftop_id)
    assert rooftop is not None
    config = rooftop.settings
    if message.expires_at is not None and message.expires_at <= now:
        return Verdict(
            "expire", f"expired at {message.expires_at:%Y-%m-%d %H:%MZ} before it could be sent"
        ), None
    phone = session.get(Phone, message.phone_id) if message.phone_id else None
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
        consent_verdict(session, message=message, rooftop=config),
        quiet_hours_verdict(
            session, message=message, rooftop=config, recipient_e164=recipient_e164, now=now
        ),
        daily_cap_verdict(session, message=message, rooftop=config, now=now),
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
        reconcile=False,
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


def _send(
    database: Database,
    plan: SendPlan,
    *,
    gateway: MessageGateway,
    clock: Clock,
    auth_failed: threading.Event,
    result: DispatchResult,
) -> None:
    if auth_failed.is_set():
        result.count(
            outcomes.release(database, plan, reason="sending stopped: Twilio credentials rejected")
        )
        return
    PACER.wait(plan.sender, plan.rate)
    if clock() >= plan.claimed_until - LEASE_SAFETY:
        # Too late to send safely: leave the row; it is reclaimed (and reconciled) after its lease.
        log.warning("message %s: lease nearly over, left for the next run", plan.message_id)
        return
    out = plan.outgoing
    if plan.reconcile:
        try:
            existing = gateway.find_existing(
                to=out.to,
                from_=out.from_,
                messaging_service_sid=out.messaging_service_sid,
                body=out.body,
                content_sid=out.content_sid,
                created_after=plan.created_after,
            )
        except SendError as exc:
            result.count(
                outcomes.record_failure(database, plan, exc, now=clock(), auth_failed=auth_failed)
            )
            return
        if existing is not None:
            result.count(
                outcomes.record_accepted(database, plan, existing, adopted=True, now=clock())
            )
            return
    try:
        sent = gateway.send(out)
    except SendError as exc:
        result.count(
            outcomes.record_failure(database, plan, exc, now=clock(), auth_failed=auth_failed)
        )
        return
    result.count(outcomes.record_accepted(database, plan, sent, adopted=False, now=clock()))
