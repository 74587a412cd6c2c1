"""Store what the DMS says about repair orders: map, diff, write only what changed.

The rule every poll lives by: an RO whose content did not change costs zero row
writes. A page of records is compared with what is stored in ONE query (RO number ->
id, hashes, and the facts a change is decided on: stage, promised time, customer,
vehicle); unchanged ROs cost nothing more. Changed ROs are written set-based (see
`writes`): no ORM object is built for them, and their lines are read only when the
DMS lists different lines (`lines_hash`). Only when there are change hooks are the
changed ROs loaded as ORM objects, in one query per page, and handed to the hooks
(messaging rules) in the same transaction.

Stages: the rooftop's `status_map` turns the DMS's raw status into a stage. A raw
status with no mapping keeps the RO's previous stage and is counted in
`unmapped_status` (with an example RO) so an admin can map it. A brand-new RO with
an unmapped status starts at `checked_in` (the DMS has opened it, which is all we
know), or `closed` when the DMS already gives a closed time; never a stage in
between, which would be a guess.

Lines are matched by line code. A line the DMS stops listing is kept: declined-work
history and follow-ups hang on it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ARRAY, String, any_, bindparam, select, update
from sqlalchemy.orm import Session

from app.db import chunks, is_postgres
from app.dealers.models import Rooftop
from app.repair_orders import writes
from app.repair_orders.changes import ChangeHook, KnownRo, RepairOrderChange, run_hooks
from app.repair_orders.hashing import RecordDigests, record_digests
from app.repair_orders.hashing import content_hash as content_hash
from app.repair_orders.hashing import customer_hash as customer_hash
from app.repair_orders.hashing import payload_hash as payload_hash
from app.repair_orders.models import QuarantinedRecord, RepairOrder, UnmappedStatus
from app.repair_orders.page import PageWriter
from integrations.dms.base import RawRecord, RepairOrderRecord


@dataclass
class ApplyResult:
    """What one batch of records did. `changes` is filled only when there were hooks
    (or the caller asked for them): building it loads the changed ROs as ORM objects."""

    changes: list[RepairOrderChange] = field(default_factory=list)
    seen: int = 0
    unchanged: int = 0
    unmapped: int = 0
    changed: int = 0


_LIMITS = (
    ("ro_number", 40),
    ("raw_status", 60),
    ("advisor_id", 40),
)


def record_problem(record: RepairOrderRecord) -> str | None:
    """Why a normalised record cannot be stored (an identifier too long), or None."""
    for name, limit in _LIMITS:
        value = getattr(record, name)
        if value is not None and len(value) > limit:
            return f"{name}: longer than {limit} characters: {value[:80]!r}"
    for line in record.lines:
        if len(line.line_code) > 20 or len(line.op_code) > 40:
            return f"line {line.line_code[:30]!r}: line code or op code too long"
    if record.customer is not None and len(record.customer.external_id) > 100:
        return "customer.id: longer than 100 characters"
    return None


def map_stage(rooftop: Rooftop, raw_status: str) -> str | None:
    """The stage the rooftop maps this raw DMS status to, or None when unmapped."""
    return stage_map(rooftop).get(raw_status)


def stage_map(rooftop: Rooftop) -> Mapping[str, str]:
    """The rooftop's raw DMS status -> stage map, for a page's records.

    Read from the stored (already validated) config: re-validating the whole
    RooftopConfig for every page of a poll costs more than the page itself.
    """
    status_map: dict[str, str] = rooftop.config.get("status_map") or {}
    return status_map


def known_repair_orders(
    session: Session, *, rooftop_id: int, ro_numbers: Iterable[str]
) -> dict[str, KnownRo]:
    """RO number -> what is stored about it (see `KnownRo`), for the stored ROs among
    `ro_numbers`."""
    numbers = sorted(set(ro_numbers))
    known: dict[str, KnownRo] = {}
    ro = writes.RO_TABLE.c  # Core rows: no ORM result layer
    columns = (
        ro.ro_number,
        ro.id,
        ro.content_hash,
        ro.payload_hash,
        ro.missing_polls,
        ro.stage,
        ro.promised_at,
        ro.customer_id,
        ro.customer_hash,
        ro.lines_hash,
        ro.vehicle_hash,
        ro.vehicle_id,
    )
    if is_postgres(session):
        # One array parameter: PostgreSQL plans `= ANY($1)` far faster than 900 placeholders.
        batches: Iterable[Sequence[str]] = [numbers] if numbers else []
        match = ro.ro_number == any_(bindparam("numbers", type_=ARRAY(String)))
    else:
        batches = chunks(numbers)
        match = ro.ro_number.in_(bindparam("numbers", expanding=True))
    query = select(*columns).where(ro.rooftop_id == rooftop_id, match)
    make = KnownRo._make
    for batch in batches:
        for row in session.execute(query, {"numbers": list(batch)}).all():
            known[row[0]] = make(row[1:])
    return known


def apply_record(
    session: Session,
    *,
    rooftop: Rooftop,
    record: RepairOrderRecord,
    hooks: Sequence[ChangeHook],
    at: datetime,
) -> RepairOrderChange | None:
    """Store one record; the change handed to the hooks, or None when nothing changed."""
    result = apply_records(
        session, rooftop=rooftop, records=[record], hooks=hooks, at=at, load_changes=True
    )
    return result.changes[0] if result.changes else None


def apply_records(
    session: Session,
    *,
    rooftop: Rooftop,
    records: Sequence[RepairOrderRecord],
    hooks: Sequence[ChangeHook],
    at: datetime,
    payload_hashes: Mapping[str, str] | None = None,
    digests: Sequence[RecordDigests] | None = None,
    known: Mapping[str, KnownRo] | None = None,
    load_changes: bool = False,
) -> ApplyResult:
    """Store a page of records: unchanged ones cost no writes; changed ones go to the hooks.

    `known` (from `known_repair_orders`) may be passed when the caller already
    loaded it; `payload_hashes` (RO number -> raw payload hash) is stored so the
    next identical re-read can be skipped before normalising; `digests`, one per record
    (`record_digests`), may be passed when worked out already (the poller's read-ahead).
    The changes (with ORM ROs) are built when there are hooks or `load_changes` is set.
    """
    if digests is None:
        digests = [record_digests(record) for record in records]
    # RO number -> (record, digests); a repeat: the last wins
    by_number = {
        record.ro_number: (record, digest) for record, digest in zip(records, digests, strict=True)
    }
    result = ApplyResult(seen=len(by_number))
    if known is None:
        known = known_repair_orders(session, rooftop_id=rooftop.id, ro_numbers=by_number)
    changed: list[tuple[RepairOrderRecord, RecordDigests, KnownRo | None]] = []
    reappeared: list[int] = []
    for number, (record, digest) in by_number.items():
        stored = known.get(number)
        if stored is not None and stored.content_hash == digest.content:
            result.unchanged += 1
            if stored.missing_polls:
                reappeared.append(stored.id)  # back in the snapshot: no longer missing
            continue
        changed.append((record, digest, stored))
    for chunk in chunks(reappeared):
        session.execute(
            update(RepairOrder)
            .where(RepairOrder.id.in_(chunk))
            .values(missing_polls=0, missing_since=None)
            .execution_options(synchronize_session=False)
        )
    if not changed:
        return result

    page = PageWriter(session, rooftop=rooftop, at=at, payload_hashes=payload_hashes)
    unmapped: Counter[str] = Counter()
    examples: dict[str, str] = {}
    status_map = stage_map(rooftop)
    for record, digest, stored in changed:
        stage = status_map.get(record.raw_status)
        if stage is None:
            unmapped[record.raw_status] += 1
            examples[record.raw_status] = record.ro_number
            stage = stored.stage if stored else ("closed" if record.closed_at else "checked_in")
        page.plan(record, digests=digest, stored=stored, stage=stage)
    page.write()
    result.changed = len(changed)
    _count_unmapped(session, rooftop_id=rooftop.id, counts=unmapped, examples=examples, at=at)
    result.unmapped = sum(unmapped.values())
    if hooks or load_changes:
        result.changes = page.changes()
        run_hooks(session, hooks, result.changes)
    return result


def _count_unmapped(
    session: Session,
    *,
    rooftop_id: int,
    counts: Counter[str],
    examples: Mapping[str, str],
    at: datetime,
) -> None:
    """Add to each unmapped raw status's count; one poller per rooftop, so no race."""
    if not counts:
        return
    existing = {
        row.raw_status: row
        for row in session.scalars(
            select(UnmappedStatus).where(
                UnmappedStatus.rooftop_id == rooftop_id, UnmappedStatus.raw_status.in_(list(counts))
            )
        )
    }
    for raw_status, count in counts.items():
        row = existing.get(raw_status)
        if row is None:
            row = UnmappedStatus(
                rooftop_id=rooftop_id, raw_status=raw_status, count=0, first_seen_at=at
            )
            session.add(row)
        row.count += count
        row.example_ro_number = examples[raw_status]
        row.last_seen_at = at


def quarantine(
    session: Session, *, rooftop_id: int, raw: RawRecord, reason: str, at: datetime
) -> None:
    """Keep a record we could not store, once per distinct payload while unresolved."""
    payload = json.dumps(raw.payload, sort_keys=True, default=str)
    digest = payload_hash(raw.payload)
    exists = session.scalar(
        select(QuarantinedRecord.id).where(
            QuarantinedRecord.rooftop_id == rooftop_id,
            QuarantinedRecord.payload_hash == digest,
            QuarantinedRecord.resolved_at.is_(None),
        )
    )
    if exists is None:
        session.add(
            QuarantinedRecord(
                rooftop_id=rooftop_id,
                ro_number=raw.ro_number[:40] if raw.ro_number else None,
                reason=reason,
                payload=payload,
                payload_hash=digest,
                received_at=at,
            )
        )
