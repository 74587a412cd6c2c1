"""The dispatcher: claim due outbox rows, apply policies, send through the gateway, record.

A send is three short steps and never holds a database lock across the network:

1. claim and decide (one transaction): due rows are read and locked; PostgreSQL
   skips rows other workers hold (`FOR UPDATE SKIP LOCKED`), SQLite serialises
   the claim in its write lock (`BEGIN IMMEDIATE`). Rows whose lease expired (a
   crashed worker) are claimed again. Each row is sent, held (`not_before`),
   suppressed, or expired by the policies; the reason is written on the row, and
   the rows to send become `sending` with a claim token, a lease (`claimed_until`)
   and `send_started_at`, set before anything leaves the building.
2. send outside any transaction, on threads that live for the whole run. The
   next batch is claimed while this one's sends are in flight, so the threads
   never wait for the database.
3. record the outcomes in batched transactions (`outcomes.record`), each write
   guarded by the claim token: a worker that lost its claim writes nothing.
   Only the dispatcher's own thread touches the database; send threads only talk
   to Twilio.

Twilio has no idempotency key, so a row that may already exist at Twilio (an
earlier ambiguous attempt, or a crash after `send_started_at`) is looked up in
Twilio's message list first, and the existing sid adopted when found.

Step 1 lives in `app/messaging/claim.py`, step 3 in `app/messaging/outcomes.py`; this
module runs the loop and the sends.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.db import Database, utcnow
from app.messaging import outcomes
from app.messaging.claim import claim_and_decide
from app.messaging.outcomes import DispatchResult, SendOutcome, SendPlan
from app.messaging.service import claim_credentials_check, resolve_auth_alert
from integrations.twilio.base import ErrorKind, MessageGateway, SendError

log = logging.getLogger(__name__)

__all__ = ["Clock", "DispatchResult", "SendPlan", "dispatch_due"]

DEFAULT_LEASE = timedelta(minutes=5)
# Do not start a send with less lease than this left: another worker may take the row.
LEASE_SAFETY = timedelta(seconds=30)
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
# Record finished sends at least this often (seconds), or once RECORD_BATCHES batches'
# worth is done.
RECORD_EVERY = 0.2
RECORD_BATCHES = 2

# A claim after the first takes up to this many times `batch_size` while pacing holds
# nothing back (the last claim's texts all due within PACED_NOW): at 0 ms latency a
# claim per 100 texts, its round trips each waiting for the send threads to hand back
# the interpreter, let the send threads run dry for a third of their time.
GROWN_BATCHES = 2
PACED_NOW = timedelta(seconds=1)
# No claim ahead while a claimed text's send slot is further off than this: a slow
# sender's claims then never reserve slots past their lease (LEASE_SAFETY before it).
CLAIM_HORIZON = timedelta(seconds=60)

# How often a long run looks for rows whose lease lapsed (a crashed worker's), beside
# the first claim of every run: a small part of DEFAULT_LEASE.
LAPSED_EVERY = timedelta(seconds=30)

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

    Keep `GROWN_BATCHES * batch_size / send_rate_per_second` under `lease` less
    LEASE_SAFETY so pacing never outlives a claim (a text whose slot comes too late is
    left to the next run after its lease). Batches after the first are claimed while
    earlier sends are still in flight, unless their send slots lie more than
    CLAIM_HORIZON ahead; the run ends when a claim comes back short.
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
    pool = _SendPool(sender.send, concurrency=max(1, concurrency))
    try:
        sender.run(pool, concurrency=max(1, concurrency), max_batches=max_batches)
    finally:
        pool.close()
    if sender.auth_failed.is_set():
        result.stopped = "Twilio rejected the credentials (20003)"
    return result


class _SendPool:
    """Up to `concurrency` threads sending the plans put on one queue, for one run.

    Lighter than a ThreadPoolExecutor: no Future per send (outcomes come back on
    `_Run.finished`, nobody waits on a Future), which cost both the dispatcher's thread
    and the senders microseconds a text. A thread starts with each plan until there are
    `concurrency`; `close` lets them finish what was put and joins them.
    """

    def __init__(self, send: Callable[[SendPlan], None], *, concurrency: int) -> None:
        self._send = send
        self._concurrency = concurrency
        self._plans: queue.SimpleQueue[SendPlan | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, plan: SendPlan) -> None:
        self._plans.put(plan)
        if len(self._threads) < self._concurrency:
            thread = threading.Thread(target=self._work, name=f"pitwall-send_{len(self._threads)}")
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        for _ in self._threads:
            self._plans.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while (plan := self._plans.get()) is not None:
            self._send(plan)


class _Finished:
    """The outcomes the send threads hand back; the dispatcher sleeps until it needs them."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._outcomes: list[SendOutcome] = []
        self._wanted = 1

    def put(self, outcome: SendOutcome) -> None:
        with self._ready:
            self._outcomes.append(outcome)
            if len(self._outcomes) == self._wanted:
                self._ready.notify()

    def take(self, wanted: int, *, timeout: float) -> list[SendOutcome]:
        """Every outcome in so far, once there are `wanted` or after `timeout` seconds."""
        with self._ready:
            self._wanted = max(1, wanted)
            if wanted > 0 and timeout > 0:
                self._ready.wait_for(lambda: len(self._outcomes) >= self._wanted, timeout)
            outcomes, self._outcomes = self._outcomes, []
            return outcomes


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
    lapsed_checked: datetime | None = None  # when this run last looked for lapsed leases
    finished: _Finished = field(default_factory=lambda: _Finished())

    def run(self, pool: _SendPool, *, concurrency: int, max_batches: int) -> None:
        in_flight = 0  # submitted and not yet recorded
        done: list[SendOutcome] = []
        batches, more = 0, True
        last_record = time.monotonic()
        # Claim the next batch while the pool still has a whole batch queued beyond what
        # its threads are sending: a claim takes tens of milliseconds of wall time (more
        # while the send threads hold the GIL), and they must not run dry meanwhile. With
        # half a batch they did at 0 ms latency.
        claim_at = concurrency + self.batch_size
        # Record two batches' outcomes at a time (or what RECORD_EVERY has gathered): a
        # record costs the dispatcher's thread round trips, each of which it then waits
        # on the send threads to hand back the interpreter; at 0 ms latency a record per
        # batch beside a claim per batch was what bounded the rate.
        record_at = RECORD_BATCHES * self.batch_size
        limit, horizon = self.batch_size, utcnow()  # the latest send slot claimed so far
        while True:
            sending = in_flight - len(done)
            claiming = more and batches < max_batches and horizon - utcnow() <= CLAIM_HORIZON
            if claiming and sending <= claim_at:
                plans, more = self._claim_batch(limit)
                batches += 1
                for plan in plans:
                    pool.submit(plan)
                in_flight += len(plans)
                latest = max((p.send_at for p in plans if p.send_at is not None), default=None)
                horizon = max(horizon, latest or horizon)
                paced = latest is not None and latest - utcnow() > PACED_NOW
                limit = self.batch_size * (1 if paced else GROWN_BATCHES)
                continue
            if in_flight == 0:
                return
            # Sleep until enough sends finish for the next claim or record (or until a
            # record is due by time): woken per finished send, or every few milliseconds,
            # the dispatcher spent a fifth of its CPU per text on wake-ups.
            wanted = min(record_at, in_flight) - len(done)
            if claiming:
                wanted = min(wanted, sending - claim_at)
            waited = time.monotonic() - last_record
            done += self.finished.take(
                wanted, timeout=RECORD_EVERY - waited if done else RECORD_EVERY
            )
            due = len(done) >= min(record_at, in_flight)
            if done and (due or time.monotonic() - last_record >= RECORD_EVERY):
                self._record(done)
                in_flight -= len(done)
                done = []
                last_record = time.monotonic()

    def _claim_batch(self, limit: int) -> tuple[list[SendPlan], bool]:
        """Claim and decide up to `limit` rows: (plans to send, whether more may be due)."""
        if self.auth_failed.is_set():
            return [], False
        token = str(uuid.uuid4())

        def claim() -> tuple[list[SendPlan], int]:
            now = self.clock()
            # Leases last minutes: lapsed rows are looked for on a run's first claim and
            # then every LAPSED_EVERY, not on every batch (a query less per claim).
            lapsed = self.lapsed_checked is None or now - self.lapsed_checked >= LAPSED_EVERY
            if lapsed:
                self.lapsed_checked = now
            return claim_and_decide(
                self.database,
                token=token,
                now=now,
                limit=limit,
                lease=self.lease,
                callback=self.callback,
                result=self.result,
                lapsed=lapsed,
            )

        plans, claimed = claim()
        if self.result.stopped and _credentials_accepted_again(
            self.database, gateway=self.gateway, now=self.clock()
        ):
            self.result.stopped = None
            plans, claimed = claim()
        if claimed:
            log.debug("worker %s claimed %d messages (token %s)", self.worker_id, claimed, token)
        return plans, claimed == limit and not self.result.stopped

    def send(self, plan: SendPlan) -> None:
        """Send one plan (on a pool thread) and hand its outcome to the dispatcher's thread."""
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
