"""Poll one rooftop's DMS: a unit of work that owns its transactions.

    lease `dms:<rooftop id>`  ->  pages since (cursor - overlap), each fetched, compared
    and normalised a page ahead (in a second thread on PostgreSQL)  ->  one transaction
    per page (quarantine, apply, cursor)  ->  page.ack()  ->  confirm vanished ROs
    (snapshot DMSes)  ->  health in `dms_poll_state`  ->  release the lease

The read-ahead overlaps the DMS's answer time (and the normalising) with the database's
write of the page before: with a DMS taking 150 ms a page, a 2,500-RO catch-up in three
pages is stored in 0.72 s instead of 1.0 s (docs/SCALING.md).

A broken record is quarantined and the page goes on; a broken page is rolled back
(its cursor does not move, so the next poll re-reads it) and the poll stops there;
a broken rooftop is recorded in its health and never raised, so the others go on.

The cursor is the highest `updated_at` of committed pages and never moves back.
It assumes the DMS pages in `updated_at` order, as the bridge and the simulator do;
the overlap re-read covers ties and clock drift, and the content hash makes the
re-read free. A vendor adapter that reads a time window instead (CDK, Tekion,
Dealertrack) marks its last page with the window's end (`DmsPage.watermark`), and
the cursor moves there once that page is committed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, joinedload

from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.ops.leases import acquire_lease, release_lease, renew_lease
from app.repair_orders.changes import ChangeHook
from app.repair_orders.hashing import RecordDigests, record_digests
from app.repair_orders.health import record_health, redact
from app.repair_orders.models import (
    DmsPollState,
)
from app.repair_orders.service import (
    KnownRo,
    apply_records,
    known_repair_orders,
    payload_hash,
    quarantine,
    record_problem,
)
from app.repair_orders.vanished import confirm_vanished
from integrations.dms.base import (
    DmsAdapter,
    DmsError,
    DmsPage,
    MalformedRecord,
    RawRecord,
    RepairOrderRecord,
)

log = logging.getLogger(__name__)

AdapterFactory = Callable[[Rooftop], DmsAdapter]
Clock = Callable[[], datetime]

T = TypeVar("T")

OVERLAP = timedelta(minutes=5)
LEASE_TTL = timedelta(minutes=2)


class PageFailed(Exception):
    """No record of a page could be stored: a fault of Pitwall's, so the page is retried."""


class LeaseLost(Exception):
    """Our lease expired and another worker took the rooftop over: stop writing."""


@dataclass(frozen=True)
class PollResult:
    """What one poll of one rooftop did. `outcome`: ok | failed | skipped."""

    rooftop_id: int
    outcome: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    duration_ms: int = 0


def _counts() -> Counter[str]:
    return Counter({"seen": 0, "changed": 0, "unchanged": 0, "quarantined": 0, "unmapped": 0})


def poll_rooftop(
    database: Database,
    *,
    rooftop_id: int,
    adapter_factory: AdapterFactory,
    hooks: Sequence[ChangeHook],
    clock: Clock = utcnow,
    worker_id: str,
    overlap: timedelta = OVERLAP,
    lease_ttl: timedelta = LEASE_TTL,
) -> PollResult:
    """Poll one rooftop once. Never raises for a DMS or data problem: see `PollResult`.

    `adapter_factory(rooftop)` returns the rooftop's adapter; the factory owns it
    (it may cache it across polls), so the poller never closes it.
    """
    lease, leased_at = f"dms:{rooftop_id}", clock()
    with database.transaction() as session:
        if not acquire_lease(session, name=lease, holder=worker_id, ttl=lease_ttl, now=leased_at):
            return PollResult(rooftop_id=rooftop_id, outcome="skipped")
        rooftop, cursor = _rooftop_and_cursor(session, rooftop_id)
    page_job = _PageJob(database, rooftop, cursor, hooks, clock, worker_id, lease_ttl, leased_at)
    result: PollResult | None = None
    try:
        result = _poll(page_job, adapter_factory, overlap)
        return result
    finally:
        _finish(database, page_job, lease, result)


def _rooftop_and_cursor(session: Session, rooftop_id: int) -> tuple[Rooftop, datetime | None]:
    """The rooftop (with its group) and its cursor, in one query."""
    rooftop, cursor = session.execute(
        select(Rooftop, DmsPollState.cursor_at)
        .outerjoin(DmsPollState, DmsPollState.rooftop_id == Rooftop.id)
        .where(Rooftop.id == rooftop_id)
        .options(joinedload(Rooftop.group))
    ).one()
    return rooftop, cursor


def _poll(page_job: _PageJob, adapter_factory: AdapterFactory, overlap: timedelta) -> PollResult:
    rooftop, cursor = page_job.rooftop, page_job.cursor
    t0 = time.monotonic()
    counts, error = _counts(), None
    try:
        adapter = page_job.adapter = adapter_factory(rooftop)
        pages = iter(adapter.fetch_changed(cursor - overlap if cursor is not None else None))
        with _read_ahead(page_job.database) as ahead:
            upcoming = ahead.submit(page_job.read_next, pages)
            while (read := upcoming.result()) is not None:
                upcoming = ahead.submit(page_job.read_next, pages)
                counts.update(page_job.store(read))  # update: += would drop zero counts
                if read.page.ack is not None:
                    read.page.ack()  # only after the page committed: the DMS may now forget it
        if adapter.snapshot:
            counts["vanished"] = page_job.confirm_vanished()
    except DmsError as exc:
        error = str(exc)
    except LeaseLost:
        error = "lease lost to another worker mid-poll; it carries on from the committed pages"
    except PageFailed as exc:
        log.error("rooftop %s: a page could not be stored: %s", rooftop.slug, exc)
        error = f"rooftop '{rooftop.slug}': page not stored, will retry: {exc}"
    except Exception as exc:
        log.exception("poll of rooftop %s failed", rooftop.slug)
        error = f"rooftop '{rooftop.slug}': {type(exc).__name__}: {exc}"
    return PollResult(
        rooftop_id=rooftop.id,
        outcome="failed" if error else "ok",
        counts={key: int(value) for key, value in counts.items()},
        error=redact(error, rooftop) if error else None,
        duration_ms=int((time.monotonic() - t0) * 1000),
    )


def _finish(database: Database, page_job: _PageJob, lease: str, result: PollResult | None) -> None:
    """The poll's health recorded (when it ran to a result) and its lease released, in one
    transaction. Never raises: the poll's outcome stands, and the lease expires by itself."""
    try:
        with database.transaction() as session:
            if result is not None:
                record_health(
                    session,
                    result.rooftop_id,
                    page_job.started,
                    result.duration_ms,
                    result.counts,
                    result.error,
                )
            release_lease(session, name=lease, holder=page_job.worker_id)
    except Exception:
        log.exception("could not record the poll's health or release lease %s", lease)


def _read_ahead(database: Database) -> Executor:
    """Where the next page is read while the last is written.

    PostgreSQL: a second thread, so each waits on the database while the other computes
    (a full re-read of 50,000 ROs: 3.07 -> 2.45 s). SQLite runs in this process, and the
    two threads' row-by-row trade of the GIL costs more than it overlaps (2.97 -> 3.25 s):
    there the page is read inline, just before its write.
    """
    if database.engine.dialect.name == "sqlite":
        return _Inline()
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="dms-read-ahead")


class _Inline(Executor):
    """An executor that runs each call at once, in the caller's thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@dataclass(slots=True)
class _Read:
    """One DMS record as read ahead: its payload hash and, unless it is the very payload
    stored, its normalised record and the record's hashes, or why it cannot be stored."""

    raw: RawRecord
    digest: str
    record: RepairOrderRecord | None = None  # set by `_normalise`, or else `problem` is
    digests: RecordDigests | None = None  # set with `record`
    problem: str | None = None


@dataclass(slots=True)
class _ReadPage:
    """A page read ahead of its write: its records and what was stored about them then."""

    page: DmsPage
    reads: list[_Read]
    known: dict[str, KnownRo]
    numbers: set[str]  # every RO number the page names, as sent and as normalised


class _PageJob:
    """Stores pages of one poll, each in its own transaction.

    `read_next` runs one page ahead of `store` (in another thread on PostgreSQL, see
    `_read_ahead`): it fetches the page, reads what is stored about its ROs (in its own
    read-only unit of work) and normalises the records whose payload is not the one
    stored. What it read may predate the commit of the page being stored meanwhile, so
    `store` reads again the ROs that page wrote.
    """

    def __init__(
        self,
        database: Database,
        rooftop: Rooftop,
        cursor: datetime | None,
        hooks: Sequence[ChangeHook],
        clock: Clock,
        worker_id: str,
        lease_ttl: timedelta,
        leased_at: datetime,
    ) -> None:
        self.database, self.rooftop, self.hooks = database, rooftop, hooks
        self.rooftop_id = rooftop.id
        self.clock, self.worker_id, self.lease_ttl = clock, worker_id, lease_ttl
        self.started = leased_at  # when the poll began: its health's attempt time
        self.leased_at = leased_at  # when the lease was last taken or renewed
        self.cursor = cursor  # as stored: read when the poll began, then ours
        self.adapter: DmsAdapter | None = None
        self.seen_numbers: set[str] = set()
        self.written: set[str] = set()  # RO numbers the last stored page wrote

    def read_next(self, pages: Iterator[DmsPage]) -> _ReadPage | None:
        """Fetch the next page and read it ahead of its write; None after the last."""
        page = next(pages, None)
        return None if page is None else self._read(page)

    def _read(self, page: DmsPage) -> _ReadPage:
        hints = {raw.ro_number for raw in page.records if raw.ro_number}
        with self.database.reading() as session:
            known = known_repair_orders(session, rooftop_id=self.rooftop_id, ro_numbers=hints)
            reads = [_Read(raw, payload_hash(raw.payload)) for raw in page.records]
            for read in reads:
                if not _unchanged(read, known):
                    self._normalise(read)
            numbers = hints | {read.record.ro_number for read in reads if read.record}
            if missing := numbers - hints:
                known.update(
                    known_repair_orders(session, rooftop_id=self.rooftop_id, ro_numbers=missing)
                )
        return _ReadPage(page=page, reads=reads, known=known, numbers=numbers)

    def _normalise(self, read: _Read) -> None:
        assert self.adapter is not None
        if read.record is not None or read.problem is not None:
            return  # normalised already
        try:
            read.record = self.adapter.normalise(read.raw)
            read.problem = record_problem(read.record)
        except MalformedRecord as exc:
            read.problem = exc.reason
        else:
            if read.problem is None:
                read.digests = record_digests(read.record)

    def store(self, read: _ReadPage) -> Counter[str]:
        """Store a page; if the batch hits an unexpected error, retry it record by record
        so that only the record at fault is set aside."""
        leased_at = self.leased_at
        try:
            counts = self._store(read, isolate=False)
        except (DmsError, LeaseLost, OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception(
                "rooftop %s: page failed as a batch; retrying record by record", self.rooftop_id
            )
            self.leased_at = leased_at  # a renewal in the rolled-back batch never happened
            counts = self._store(read, isolate=True)
        return counts

    def _begin(self, session: Session) -> Rooftop:
        """A page's transaction begins: the lease renewed once a quarter of its time has
        gone (before that nobody else can have taken it: it has three quarters to run),
        and the rooftop as read when the poll began."""
        now = self.clock()
        if now - self.leased_at >= self.lease_ttl / 4:
            if not renew_lease(
                session,
                name=f"dms:{self.rooftop_id}",
                holder=self.worker_id,
                ttl=self.lease_ttl,
                now=now,
            ):
                raise LeaseLost()
            self.leased_at = now
        return session.merge(self.rooftop, load=False)  # as read when the poll began

    def _known_now(self, session: Session, read: _ReadPage) -> dict[str, KnownRo]:
        """What is stored about the page's ROs, read again for those the previous page
        wrote after this one was read ahead (so their records are decided afresh)."""
        stale = read.numbers & self.written
        if not stale:
            return read.known
        fresh = known_repair_orders(session, rooftop_id=self.rooftop_id, ro_numbers=stale)
        known = {number: ro for number, ro in read.known.items() if number not in stale}
        known.update(fresh)
        return known

    def _store(self, read: _ReadPage, *, isolate: bool) -> Counter[str]:
        counts = _counts()
        with self.database.transaction() as session:
            rooftop = self._begin(session)
            known = self._known_now(session, read)
            records: list[tuple[RawRecord, RepairOrderRecord]] = []
            digests: list[RecordDigests] = []
            hashes: dict[str, str] = {}
            for item in read.reads:
                raw = item.raw
                counts["seen"] += 1
                if raw.ro_number:
                    self.seen_numbers.add(raw.ro_number)
                if _unchanged(item, known):
                    counts["unchanged"] += 1  # the very payload we stored: not even normalised
                    continue
                self._normalise(item)  # done already, unless read ahead as unchanged
                if item.problem is not None:
                    counts["quarantined"] += 1
                    quarantine(
                        session,
                        rooftop_id=rooftop.id,
                        raw=raw,
                        reason=item.problem,
                        at=self.clock(),
                    )
                    continue
                record = item.record
                assert record is not None and item.digests is not None  # without a problem
                self.seen_numbers.add(record.ro_number)
                hashes[record.ro_number] = item.digest
                records.append((raw, record))
                digests.append(item.digests)
            at = self.clock()
            if not isolate:
                result = apply_records(
                    session,
                    rooftop=rooftop,
                    records=[r for _, r in records],
                    hooks=self.hooks,
                    at=at,
                    payload_hashes=hashes,
                    digests=digests,
                    known=known,
                )
                counts.update(
                    changed=result.changed, unchanged=result.unchanged, unmapped=result.unmapped
                )
            else:
                failures: list[tuple[RawRecord, str]] = []
                for (raw, record), digest in zip(records, digests, strict=True):
                    try:
                        with session.begin_nested():
                            result = apply_records(
                                session,
                                rooftop=rooftop,
                                records=[record],
                                hooks=self.hooks,
                                at=at,
                                payload_hashes=hashes,
                                digests=[digest],
                            )
                        counts.update(
                            changed=result.changed,
                            unchanged=result.unchanged,
                            unmapped=result.unmapped,
                        )
                    except (OperationalError, InterfaceError):
                        raise  # the database is unwell, not the record: retry the page later
                    except Exception as exc:
                        failures.append((raw, f"could not be stored: {type(exc).__name__}: {exc}"))
                if failures and len(failures) == len(records):
                    # Not one record stored: the fault is ours, not the DMS's. Fail the page
                    # (cursor unmoved, error in poll health) rather than quarantine it all.
                    raise PageFailed(failures[0][1][:500])
                for raw, reason in failures:
                    counts["quarantined"] += 1
                    quarantine(session, rooftop_id=rooftop.id, raw=raw, reason=reason[:2000], at=at)
            cursor = self._moved_cursor(records, read.page.watermark)
            if cursor is not None:
                _advance_cursor(session, rooftop.id, cursor)
        if cursor is not None:
            self.cursor = cursor  # committed (one poller per rooftop: nobody else moves it)
        self.written = {record.ro_number for _, record in records}
        return counts

    def _moved_cursor(
        self,
        records: Sequence[tuple[RawRecord, RepairOrderRecord]],
        watermark: datetime | None = None,
    ) -> datetime | None:
        """Where the page moves the cursor (its records' latest `updated_at`, or the
        page's watermark when later: the DMS said it was read up to there), or None when
        it stays where it is."""
        seen = max((r.updated_at for _, r in records if r.updated_at is not None), default=None)
        if watermark is not None and (seen is None or watermark > seen):
            seen = watermark
        if seen is None or (self.cursor is not None and seen <= self.cursor):
            return None
        return seen

    def confirm_vanished(self) -> int:
        """Snapshot DMSes: ask about open ROs the snapshot left out (see `vanished`)."""
        assert self.adapter is not None
        return confirm_vanished(
            self.database,
            rooftop_id=self.rooftop_id,
            adapter=self.adapter,
            seen_numbers=self.seen_numbers,
            hooks=self.hooks,
            clock=self.clock,
            begin=self._begin,
        )


def _unchanged(read: _Read, known: Mapping[str, KnownRo]) -> bool:
    """The very payload stored (and the RO not missing from a snapshot): nothing to do."""
    stored = known.get(read.raw.ro_number) if read.raw.ro_number else None
    return stored is not None and stored.payload_hash == read.digest and not stored.missing_polls


def _advance_cursor(session: Session, rooftop_id: int, seen: datetime) -> None:
    """Move the cursor up to `seen`, never backward: one UPDATE, an INSERT the first time."""
    moved = session.execute(
        update(DmsPollState)
        .where(
            DmsPollState.rooftop_id == rooftop_id,
            or_(DmsPollState.cursor_at.is_(None), DmsPollState.cursor_at < seen),
        )
        .values(cursor_at=seen)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount:  # type: ignore[attr-defined]
        return
    if session.get(DmsPollState, rooftop_id) is None:
        session.add(DmsPollState(rooftop_id=rooftop_id, cursor_at=seen, consecutive_failures=0))


def due_rooftop_ids(session: Session, *, now: datetime) -> list[int]:
    """Active rooftops whose poll_seconds have passed since their last attempt."""
    rows = session.execute(
        select(Rooftop, DmsPollState.last_attempt_at)
        .outerjoin(DmsPollState, DmsPollState.rooftop_id == Rooftop.id)
        .where(Rooftop.active.is_(True))
        .order_by(Rooftop.id)
    ).all()
    due = []
    for rooftop, last in rows:
        interval = timedelta(seconds=rooftop.settings.dms.poll_seconds)
        if last is None or last + interval <= now:
            due.append(rooftop.id)
    return due


def poll_due_rooftops(
    database: Database,
    *,
    adapter_factory: AdapterFactory,
    hooks: Sequence[ChangeHook],
    clock: Clock = utcnow,
    worker_id: str,
    max_workers: int = 4,
    rooftop_ids: Sequence[int] | None = None,
) -> list[PollResult]:
    """Poll every due rooftop (or those given), each in its own thread, and wait for all.

    A slow DMS holds one thread; the others' polls run beside it.
    """
    if rooftop_ids is None:
        with database.transaction() as session:
            rooftop_ids = due_rooftop_ids(session, now=clock())
    if not rooftop_ids:
        return []

    def one(rooftop_id: int) -> PollResult:
        try:
            return poll_rooftop(
                database,
                rooftop_id=rooftop_id,
                adapter_factory=adapter_factory,
                hooks=hooks,
                clock=clock,
                worker_id=worker_id,
            )
        except Exception as exc:  # e.g. the database itself is down: report, let others finish
            log.exception("poll of rooftop %s could not run", rooftop_id)
            return PollResult(rooftop_id=rooftop_id, outcome="failed", error=type(exc).__name__)

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(rooftop_ids)))) as pool:
        return list(pool.map(one, rooftop_ids))
