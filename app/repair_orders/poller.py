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

This module holds the poll's frame (lease, pages in order, health, release) and the
scheduling of polls; a page's read-ahead and its write are `page_job.PageJob`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.db import Database, utcnow
from app.dealers.models import Rooftop
from app.ops.leases import acquire_lease, release_lease
from app.repair_orders.changes import ChangeHook
from app.repair_orders.health import record_health, redact
from app.repair_orders.models import (
    DmsPollState,
)
from app.repair_orders.page_job import (
    Clock,
    LeaseLost,
    PageFailed,
    PageJob,
    new_counts,
)
from integrations.dms.base import (
    DmsAdapter,
    DmsError,
)

log = logging.getLogger(__name__)

AdapterFactory = Callable[[Rooftop], DmsAdapter]

T = TypeVar("T")

OVERLAP = timedelta(minutes=5)
LEASE_TTL = timedelta(minutes=2)


@dataclass(frozen=True)
class PollResult:
    """What one poll of one rooftop did. `outcome`: ok | failed | skipped."""

    rooftop_id: int
    outcome: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    duration_ms: int = 0


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
    page_job = PageJob(database, rooftop, cursor, hooks, clock, worker_id, lease_ttl, leased_at)
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


def _poll(page_job: PageJob, adapter_factory: AdapterFactory, overlap: timedelta) -> PollResult:
    rooftop, cursor = page_job.rooftop, page_job.cursor
    t0 = time.monotonic()
    counts, error = new_counts(), None
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


def _finish(database: Database, page_job: PageJob, lease: str, result: PollResult | None) -> None:
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
