"""Store what the DMS says about repair orders: map, diff, write only what changed.

The rule every poll lives by: an RO whose content did not change costs zero row
writes. A page of records is compared with what is stored in ONE query
(RO number -> id, content hash); unchanged ROs are never loaded; the changed
ones are loaded together with their lines and vehicles, updated, and handed to
the change hooks (messaging rules) in the same transaction.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload, selectinload

from app.customers.service import dms_ref_source, resolve_customer
from app.db import is_postgres
from app.dealers.models import Rooftop
from app.repair_orders.changes import ChangeHook, LineChange, RepairOrderChange
from app.repair_orders.hashing import content_hash as content_hash
from app.repair_orders.hashing import customer_hash as customer_hash
from app.repair_orders.hashing import iso
from app.repair_orders.hashing import payload_hash as payload_hash
from app.repair_orders.models import (
    QuarantinedRecord,
    RepairOrder,
    RoEvent,
    RoLine,
    UnmappedStatus,
    Vehicle,
)
from integrations.dms.base import DmsCustomer, DmsLine, DmsVehicle, RawRecord, RepairOrderRecord

_CHUNK = 900  # stays under every backend's bound-parameter limit


@dataclass(frozen=True)
class KnownRo:
    """What a page needs to know about a stored RO to decide whether to touch it."""

    id: int
    content_hash: str
    payload_hash: str | None
    missing_polls: int


@dataclass
class ApplyResult:
    """What one batch of records did."""

    changes: list[RepairOrderChange] = field(default_factory=list)
    seen: int = 0
    unchanged: int = 0
    unmapped: int = 0

    @property
    def changed(self) -> int:
        return len(self.changes)


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
    """The stage the rooftop maps this raw DMS status to, or None when unmapped.

    Read from the stored (already validated) config: re-validating the whole
    RooftopConfig for every page of a poll costs more than the page itself.
    """
    status_map: dict[str, str] = rooftop.config.get("status_map") or {}
    return status_map.get(raw_status)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def known_repair_orders(
    session: Session, *, rooftop_id: int, ro_numbers: Iterable[str]
) -> dict[str, KnownRo]:
    """RO number -> (id, hashes, missing polls) for the stored ROs among `ro_numbers`."""
    numbers = sorted(set(ro_numbers))
    known: dict[str, KnownRo] = {}
    columns = (
        RepairOrder.ro_number,
        RepairOrder.id,
        RepairOrder.content_hash,
        RepairOrder.payload_hash,
        RepairOrder.missing_polls,
    )
    if is_postgres(session):
        # One array parameter: PostgreSQL plans `= ANY($1)` far faster than 900 placeholders.
        chunks: Iterable[Sequence[str]] = [numbers] if numbers else []
        match = RepairOrder.ro_number == any_(bindparam("numbers", type_=ARRAY(String)))
    else:
        chunks = _chunks(numbers)
        match = RepairOrder.ro_number.in_(bindparam("numbers", expanding=True))
    query = select(*columns).where(RepairOrder.rooftop_id == rooftop_id, match)
    for chunk in chunks:
        for number, ro_id, content, payload, missing in session.execute(
            query, {"numbers": list(chunk)}
        ):
            known[number] = KnownRo(ro_id, content, payload, missing)
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
    result = apply_records(session, rooftop=rooftop, records=[record], hooks=hooks, at=at)
    return result.changes[0] if result.changes else None


def apply_records(
    session: Session,
    *,
    rooftop: Rooftop,
    records: Sequence[RepairOrderRecord],
    hooks: Sequence[ChangeHook],
    at: datetime,
    payload_hashes: Mapping[str, str] | None = None,
    known: Mapping[str, KnownRo] | None = None,
) -> ApplyResult:
    """Store a page of records: unchanged ones cost no writes; changed ones go to the hooks.

    `known` (from `known_repair_orders`) may be passed when the caller already
    loaded it; `payload_hashes` (RO number -> raw payload hash) is stored so the
    next identical re-read can be skipped before normalising.
    """
    by_number = {record.ro_number: record for record in records}  # a repeat: the last wins
    result = ApplyResult(seen=len(by_number))
    if known is None:
        known = known_repair_orders(session, rooftop_id=rooftop.id, ro_numbers=by_number)
    changed: list[tuple[RepairOrderRecord, str, KnownRo | None]] = []
    reappeared: list[int] = []
    for number, record in by_number.items():
        digest = content_hash(record)
        stored = known.get(number)
        if stored is not None and stored.content_hash == digest:
            result.unchanged += 1
            if stored.missing_polls:
                reappeared.append(stored.id)  # back in the snapshot: no longer missing
            continue
        changed.append((record, digest, stored))
    for chunk in _chunks(reappeared):
        session.execute(
            update(RepairOrder)
            .where(RepairOrder.id.in_(chunk))
            .values(missing_polls=0, missing_since=None)
            .execution_options(synchronize_session=False)
        )
    if not changed:
        return result

    loaded = _load_for_update(session, [stored.id for _, _, stored in changed if stored])
    # Only VINs an RO does not already point at need a lookup (a steady RO's is loaded).
    vins: set[str | None] = set()
    for record, _, stored in changed:
        current = loaded[stored.id].vehicle if stored is not None else None
        if record.vehicle and (current is None or current.vin != record.vehicle.vin):
            vins.add(record.vehicle.vin)
    vehicles = _Vehicles(session, group_id=rooftop.group_id, vins=vins)
    unmapped: Counter[str] = Counter()
    examples: dict[str, str] = {}
    pending = []
    for record, digest, stored in changed:
        ro = loaded[stored.id] if stored is not None else None
        previous_stage = ro.stage if ro is not None else None
        previous_promised = ro.promised_at if ro is not None else None
        stage = map_stage(rooftop, record.raw_status)
        if stage is None:
            unmapped[record.raw_status] += 1
            examples[record.raw_status] = record.ro_number
            stage = previous_stage or ("closed" if record.closed_at else "checked_in")
        if ro is None:
            ro = RepairOrder(rooftop_id=rooftop.id, ro_number=record.ro_number, lines=[])
            session.add(ro)
        _copy_fields(ro, record, stage=stage, digest=digest, at=at)
        if payload_hashes is not None:
            ro.payload_hash = payload_hashes.get(record.ro_number)
        _apply_customer(session, rooftop=rooftop, ro=ro, customer=record.customer)
        vehicle = vehicles.apply(ro=ro, dms_vehicle=record.vehicle)
        if vehicle is not None and vehicle.customer_id is None:
            vehicle.customer_id = ro.customer_id
        line_changes = _apply_lines(ro, record.lines, at=at)
        pending.append((ro, stored is None, previous_stage, previous_promised, line_changes))
    session.flush()

    events: list[dict[str, Any]] = []
    for ro, is_new, previous_stage, previous_promised, line_changes in pending:
        change = RepairOrderChange(
            ro=ro,
            rooftop=rooftop,
            is_new=is_new,
            previous_stage=previous_stage,
            previous_promised_at=previous_promised,
            at=at,
            line_changes=tuple(line_changes),
        )
        events.extend(_events(change))
        result.changes.append(change)
    if events:
        # One executemany: thousands of ORM event objects cost more than the ROs' updates.
        session.execute(insert(RoEvent), events)
    _count_unmapped(session, rooftop_id=rooftop.id, counts=unmapped, examples=examples, at=at)
    result.unmapped = sum(unmapped.values())
    for change in result.changes:
        for hook in hooks:
            hook(session, change)
    return result


def _load_for_update(session: Session, ids: list[int]) -> dict[int, RepairOrder]:
    loaded: dict[int, RepairOrder] = {}
    for chunk in _chunks(ids):
        query = (
            select(RepairOrder)
            .where(RepairOrder.id.in_(chunk))
            .options(selectinload(RepairOrder.lines), joinedload(RepairOrder.vehicle))
        )
        loaded.update((ro.id, ro) for ro in session.scalars(query))
    return loaded


def _copy_fields(
    ro: RepairOrder, record: RepairOrderRecord, *, stage: str, digest: str, at: datetime
) -> None:
    values = {
        "raw_status": record.raw_status,
        "stage": stage,
        "opened_at": record.opened_at,
        "promised_at": record.promised_at,
        "closed_at": record.closed_at,
        "advisor_ref": record.advisor_id,
        "advisor_name": record.advisor_name[:100] if record.advisor_name else None,
        "dms_updated_at": record.updated_at,
        "content_hash": digest,
        "missing_polls": 0,
        "missing_since": None,
    }
    for name, value in values.items():
        # Assign only real differences so the UPDATE names only what moved.
        if getattr(ro, name) != value:
            setattr(ro, name, value)


class _Vehicles:
    """The group's vehicles by VIN for one batch, loaded in one query."""

    def __init__(self, session: Session, *, group_id: int, vins: set[str | None]) -> None:
        self.session, self.group_id = session, group_id
        wanted = sorted(v for v in vins if v)
        self.by_vin: dict[str, Vehicle] = {}
        for chunk in _chunks(wanted):
            found = session.scalars(
                select(Vehicle).where(Vehicle.group_id == group_id, Vehicle.vin.in_(chunk))
            )
            self.by_vin.update((v.vin, v) for v in found if v.vin)

    def apply(self, *, ro: RepairOrder, dms_vehicle: DmsVehicle | None) -> Vehicle | None:
        """Point the RO at its vehicle (by VIN in the group), creating or updating it."""
        if dms_vehicle is None:
            return ro.vehicle
        vehicle = ro.vehicle
        if dms_vehicle.vin is not None and (vehicle is None or vehicle.vin != dms_vehicle.vin):
            vehicle = self.by_vin.get(dms_vehicle.vin)
        if vehicle is None or (dms_vehicle.vin is None and vehicle.vin is not None):
            # No VIN: the RO keeps a vehicle of its own rather than guessing a match.
            vehicle = Vehicle(group_id=self.group_id, vin=dms_vehicle.vin)
            self.session.add(vehicle)
            if dms_vehicle.vin:
                self.by_vin[dms_vehicle.vin] = vehicle
        for name in ("year", "make", "model"):
            value = getattr(dms_vehicle, name)
            if value is not None and getattr(vehicle, name) != value:
                setattr(vehicle, name, value)
        if ro.vehicle is not vehicle:
            ro.vehicle = vehicle
        return vehicle


def _apply_customer(
    session: Session, *, rooftop: Rooftop, ro: RepairOrder, customer: DmsCustomer | None
) -> None:
    if customer is None:
        return
    digest = customer_hash(customer)
    if ro.customer_id is not None and ro.customer_hash == digest:
        return  # the same person as last time, as the DMS describes them: nothing to match
    matched = resolve_customer(
        session,
        group=rooftop.group,
        rooftop=rooftop,
        dms_customer=customer,
        source=dms_ref_source(rooftop),
    )
    ro.customer_id = matched.id
    ro.customer_hash = digest


def _apply_lines(ro: RepairOrder, lines: Sequence[DmsLine], *, at: datetime) -> list[LineChange]:
    by_code = {line.line_code: line for line in ro.lines}
    changes: list[LineChange] = []
    for dms_line in lines:
        line = by_code.get(dms_line.line_code)
        if line is None:
            line = RoLine(
                line_code=dms_line.line_code, status=dms_line.status, status_changed_at=at
            )
            ro.lines.append(line)
            by_code[dms_line.line_code] = line
            changes.append(LineChange(line=line, previous_status=None))
        elif line.status != dms_line.status:
            changes.append(LineChange(line=line, previous_status=line.status))
            line.status = dms_line.status
            line.status_changed_at = at
        if dms_line.status == "approved" and line.customer_approved_at is None:
            line.customer_approved_at = at
        for name, value in (
            ("op_code", dms_line.op_code),
            ("description", dms_line.description[:300]),
            ("amount_cents", dms_line.amount_cents),
        ):
            if getattr(line, name) != value:
                setattr(line, name, value)
    return changes


def _events(change: RepairOrderChange) -> list[dict[str, Any]]:
    """The `ro_event` rows a change makes (a stage move, a promised time moved)."""
    ro = change.ro
    events = []
    if change.stage_changed:
        events.append(
            {
                "repair_order_id": ro.id,
                "kind": "stage",
                "from_stage": change.previous_stage,
                "to_stage": ro.stage,
                "detail": {"raw_status": ro.raw_status},
                "at": change.at,
            }
        )
    if change.promised_changed:
        events.append(
            {
                "repair_order_id": ro.id,
                "kind": "promised",
                "from_stage": ro.stage,
                "to_stage": ro.stage,
                "detail": {"from": iso(change.previous_promised_at), "to": iso(ro.promised_at)},
                "at": change.at,
            }
        )
    return events


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
