"""The dispatcher: claim due outbox rows, apply policies, send through the gateway, record.

A send is three short steps and never holds a database lock across the network:

1. claim and decide (one transaction): due rows become `sending` with a claim
   token and a lease (`claimed_until`) in one UPDATE ... RETURNING; PostgreSQL
   skips rows other workers hold (`FOR UPDATE SKIP LOCKED`), SQLite serialises
   the claim in its write lock (`BEGIN IMMEDIATE`). Rows whose lease expired (a
   crashed worker) are claimed again. `send_started_at` is set here, before
   anything leaves the building. In the same transaction each row is sent, held
   (`not_before`), suppressed, or expired by the policies; the reason is written
   on the row.
2. send outside any transaction, in a bounded thread pool that lives for the
   whole run. The next batch is claimed while this one's sends are in flight,
   so the pool never waits for the database.
3. record the outcomes in batched transactions (`outcomes.record`), each write
   guarded by the claim token: a worker that lost its claim writes nothing.
   Only the dispatcher's own thread touches the database; send threads only talk
   to Twilio.

Twilio has no idempotency key, so a row that may already exist at Twilio (an
earlier ambiguous attempt, or a crash after `send_started_at`) is looked up in
Twilio's message list first, and the existing sid adopted when found.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
from app.messaging.outcomes import DispatchResult, SendOutcome, SendPlan
from app.messaging.pacing import reserve_batch_slots
from app.messaging.policies import (
    BatchFacts,
    Verdict,
    batch_facts,
    consent_verdict,
    daily_cap_verdict,
    quiet_hours_verdict,
)
from app.messaging.service import (
    claim_credentials_check,
    resolve_auth_alert,
    sending_stopped,
)
from integrations.twilio.base import ErrorKind, MessageGateway, OutgoingMessage, SendError

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
# Do not start a send with less lease than this left: another worker may take the row.
LEASE_SAFETY = timedelta(seconds=30)
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
# Record finished sends at least this often (seconds), or once a batch's worth is done.
RECORD_EVERY = 0.2
# Finished sends are gathered for this long (seconds) before the dispatcher looks at them:
# woken for each one as it landed (hundreds a second), the dispatcher spent a fifth of its
# CPU per text on wake-ups (docs/SCALING.md). Claims and records wait 5 ms at most for it.
GATHER = 0.005

Clock = Callable[[], datetime]
CREDENTIALS_RECHECK = timedelta(minutes=1)


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
    max_batches: int = 1,
) -> DispatchResult:
    """Send up to `max_batches` batches of due messages; a unit of work that owns its transactions.

    Keep `batch_size / send_rate_per_second` well under `lease` so pacing never
    outlives a claim. Batches after the first are claimed while earlier sends are
    still in flight; the run ends when a claim comes back short.
    """
    result = DispatchResult()
    sender = _Run(
        database=database,
        gateway=gateway,
        callback=public_url.rstrip("/") + STATUS_CALLBACK_PATH,
        worker_id=worker_id,
        clock=clock,
        batch_size=batch_size,
        lease=lease,
        result=result,
    )
    with ThreadPoolExecutor(
        max_workers=max(1, concurrency), thread_name_prefix="pitwall-send"
    ) as pool:
        sender.run(pool, concurrency=max(1, concurrency), max_batches=max_batches)
    if sender.auth_failed.is_set():
        result.stopped = "Twilio rejected the credentials (20003)"
    return result


@dataclass
class _Run:
    """One dispatch run: the claim/record loop on this thread, sends on the pool."""

    database: Database
    gateway: MessageGateway
    callback: str
    worker_id: str
    clock: Clock
    batch_size: int
    lease: timedelta
    result: DispatchResult
    auth_failed: threading.Event = field(default_factory=threading.Event)
    finished: queue.SimpleQueue[SendOutcome] = field(default_factory=queue.SimpleQueue)

    def run(self, pool: ThreadPoolExecutor, *, concurrency: int, max_batches: int) -> None:
        in_flight = 0  # submitted and not yet recorded
        done: list[SendOutcome] = []
        batches, more = 0, True
        last_record = time.monotonic()
        while True:
            sending = in_flight - len(done)
            # Claim the next batch while the pool still has half a batch queued beyond
            # what its threads are sending: a claim takes tens of milliseconds, and the
            # threads must not run dry meanwhile.
            if more and batches < max_batches and sending <= concurrency + self.batch_size // 2:
                plans, more = self._claim_batch()
                batches += 1
                for plan in plans:
                    pool.submit(self._send, plan)
                in_flight += len(plans)
                continue
            if in_flight == 0:
                return
            time.sleep(GATHER)  # one wake-up for the sends that finish meanwhile
            try:
                done.append(self.finished.get(timeout=RECORD_EVERY))
                while True:
                    done.append(self.finished.get_nowait())
            except queue.Empty:
                pass
            due = len(done) >= min(self.batch_size, in_flight)
            if done and (due or time.monotonic() - last_record >= RECORD_EVERY):
                self._record(done)
                in_flight -= len(done)
                done = []
                last_record = time.monotonic()

    def _claim_batch(self) -> tuple[list[SendPlan], bool]:
        """Claim and decide one batch: (plans to send, whether more may be due)."""
        if self.auth_failed.is_set():
            return [], False
        token = str(uuid.uuid4())

        def claim() -> tuple[list[SendPlan], int]:
            return _claim_and_decide(
                self.database,
                token=token,
                now=self.clock(),
                limit=self.batch_size,
                lease=self.lease,
                callback=self.callback,
                result=self.result,
            )

        plans, claimed = claim()
        if self.result.stopped and _credentials_accepted_again(
            self.database, gateway=self.gateway, now=self.clock()
        ):
            self.result.stopped = None
            plans, claimed = claim()
        if claimed:
            log.debug("worker %s claimed %d messages (token %s)", self.worker_id, claimed, token)
        return plans, claimed == self.batch_size and not self.result.stopped

    def _send(self, plan: SendPlan) -> None:
        try:
            if self.auth_failed.is_set():
                outcome = SendOutcome(plan, released=outcomes.STOPPED_ON_AUTH)
            else:
                outcome = _send(plan, gateway=self.gateway, clock=self.clock)
        except Exception:
            # The row keeps its claim and lease; another run reconciles it after the lease.
            log.exception(
                "worker %s: message %s: unexpected error while sending",
                self.worker_id,
                plan.message_id,
            )
            outcome = SendOutcome(plan)
        if outcome.error is not None and outcome.error.kind is ErrorKind.AUTH:
            self.auth_failed.set()  # the sends still queued are released, not tried
        self.finished.put(outcome)

    def _record(self, done: list[SendOutcome]) -> None:
        counts = outcomes.record(self.database, done, now=self.clock())
        for name, n in counts.items():
            self.result.count(name, n)


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


def _claim_and_decide(
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
                    session, message, batch=batch, now=now, callback=callback, token=token
                )
            if plan is not None:
                facts.sending(message)
                plans.append(replace(plan, reconcile=reconcile))
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


def _send(plan: SendPlan, *, gateway: MessageGateway, clock: Clock) -> SendOutcome:
    """Talk to Twilio for one plan (no database here): what happened, for `outcomes.record`."""
    if plan.send_at is not None:
        delay = (plan.send_at - utcnow()).total_seconds()
        if delay > 0:
            time.sleep(delay)
    if clock() >= plan.claimed_until - LEASE_SAFETY:
        # Too late to send safely: leave the row; it is reclaimed (and reconciled) after its lease.
        log.warning("message %s: lease nearly over, left for the next run", plan.message_id)
        return SendOutcome(plan)
    out = plan.outgoing
    try:
        if plan.reconcile:
            existing = gateway.find_existing(
                to=out.to,
                from_=out.from_,
                messaging_service_sid=out.messaging_service_sid,
                body=out.body,
                content_sid=out.content_sid,
                created_after=plan.created_after,
            )
            if existing is not None:
                return SendOutcome(plan, sent=existing, adopted=True)
        return SendOutcome(plan, sent=gateway.send(out))
    except SendError as exc:
        return SendOutcome(plan, error=exc)
