"""One poll's pages, each stored in its own transaction (the poller's inner loop).

`PageJob.read_next` runs one page ahead of `PageJob.store` (in another thread on
PostgreSQL, see `poller._read_ahead`): it fetches the page, reads what is stored
about its ROs and normalises the records whose payload is not the one stored. A page
whose batch write fails is retried record by record, so only the record at fault is
quarantined; a page that stores nothing fails (`PageFailed`) and is re-read next poll.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.db import Database
from app.dealers.models import Rooftop
from app.ops.leases import renew_lease
from app.repair_orders.changes import ChangeHook
from app.repair_orders.hashing import RecordDigests, record_digests
from app.repair_orders.models import DmsPollState
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

Clock = Callable[[], datetime]


class PageFailed(Exception):
    """No record of a page could be stored: a fault of Pitwall's, so the page is retried."""


class LeaseLost(Exception):
    """Our lease expired and another worker took the rooftop over: stop writing."""


def new_counts() -> Counter[str]:
    return Counter({"seen": 0, "changed": 0, "unchanged": 0, "quarantined": 0, "unmapped": 0})


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
class ReadPage:
    """A page read ahead of its write: its records and what was stored about them then."""

    page: DmsPage
    reads: list[_Read]
    known: dict[str, KnownRo]
    numbers: set[str]  # every RO number the page names, as sent and as normalised


class PageJob:
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

    def read_next(self, pages: Iterator[DmsPage]) -> ReadPage | None:
        """Fetch the next page and read it ahead of its write; None after the last."""
        page = next(pages, None)
        return None if page is None else self._read(page)

    def _read(self, page: DmsPage) -> ReadPage:
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
        return ReadPage(page=page, reads=reads, known=known, numbers=numbers)

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

    def store(self, read: ReadPage) -> Counter[str]:
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

    def _known_now(self, session: Session, read: ReadPage) -> dict[str, KnownRo]:
        """What is stored about the page's ROs, read again for those the previous page
        wrote after this one was read ahead (so their records are decided afresh)."""
        stale = read.numbers & self.written
        if not stale:
            return read.known
        fresh = known_repair_orders(session, rooftop_id=self.rooftop_id, ro_numbers=stale)
        known = {number: ro for number, ro in read.known.items() if number not in stale}
        known.update(fresh)
        return known

    def _store(self, read: ReadPage, *, isolate: bool) -> Counter[str]:
        counts = new_counts()
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
