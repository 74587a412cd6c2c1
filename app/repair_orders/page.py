"""A page's changed repair orders: decided in memory, written set-based, then told to hooks.

`PageWriter.plan` takes each changed record with what is stored about its RO
(`KnownRo`) and works out the RO's new columns; `write` then writes the page in a
fixed order, each step set-based (see `writes`): the customers the DMS describes
differently, matched together (`CustomerBook`, one flush), vehicles (their ids go on
the ROs), new ROs (INSERT ... RETURNING id) and changed ones (one UPDATE), lines (read
only for ROs whose DMS lines changed), events. No ORM object is built
for the page unless `changes` is asked for (there are change hooks): then the
changed ROs and their lines are loaded in one query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter, ne
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.types import TypeEngine

from app import bulk
from app.customers.book import CustomerBook
from app.customers.models import Customer
from app.customers.service import dms_ref_source
from app.db import chunks, one_of, utcnow
from app.dealers.models import Rooftop
from app.repair_orders import writes
from app.repair_orders.changes import KnownRo, LineChange, RepairOrderChange
from app.repair_orders.hashing import RecordDigests, iso
from app.repair_orders.models import RepairOrder, RoLine, Vehicle
from app.repair_orders.page_vehicles import PageVehicles
from integrations.dms.base import DmsCustomer, DmsLine, DmsVehicle, RepairOrderRecord


@dataclass(slots=True)
class _RoWrite:
    """One changed RO: its new column values and what the change hooks are told."""

    ro_number: str
    values: dict[str, Any]
    stored: KnownRo | None
    dms_vehicle: DmsVehicle | None
    vehicle_moved: bool  # the DMS describes the vehicle differently, or a new customer
    dms_lines: tuple[DmsLine, ...] | None  # None: the DMS lists the same lines as last time
    dms_customer: DmsCustomer | None = None  # to match: the DMS describes them differently
    line_changes: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        return self.stored is None


class PageWriter:
    """Plans and writes the changed ROs of one page, in the caller's transaction."""

    def __init__(
        self,
        session: Session,
        *,
        rooftop: Rooftop,
        at: datetime,
        payload_hashes: Mapping[str, str] | None,
    ) -> None:
        self.session, self.rooftop, self.at = session, rooftop, at
        self.payload_hashes = payload_hashes
        self.source = dms_ref_source(rooftop)
        self.ros: list[_RoWrite] = []
        self.customers: list[Customer] = []

    def plan(
        self,
        record: RepairOrderRecord,
        *,
        digests: RecordDigests,
        stored: KnownRo | None,
        stage: str,
    ) -> None:
        """Work out the RO's new columns. A customer the DMS describes differently is
        matched in `write`, with the rest of the page's (`CustomerBook`)."""
        customer, to_match = record.customer, None
        if customer is None:  # the DMS does not say: the RO keeps whom it had
            customer_id = stored.customer_id if stored else None
            customer_digest = stored.customer_hash if stored else None
        else:
            customer_digest = digests.customer
            same = stored is not None and stored.customer_hash == customer_digest
            if same and stored is not None and stored.customer_id is not None:
                customer_id = stored.customer_id  # the same person as last time
            else:
                customer_id, to_match = None, customer  # filled in by `_match_customers`
        digest_of_lines = digests.lines
        same_lines = stored is not None and stored.lines_hash == digest_of_lines
        digest_of_vehicle = digests.vehicle
        vehicle_moved = (
            stored is None
            or stored.vehicle_hash != digest_of_vehicle
            or (stored.vehicle_id is None and record.vehicle is not None)  # one was deleted
            # the vehicle may take its owner (a customer still to match: `_match_customers`)
            or (to_match is None and stored.customer_id != customer_id)
        )
        if self.payload_hashes is not None:
            payload = self.payload_hashes.get(record.ro_number)
        else:
            payload = stored.payload_hash if stored is not None else None
        values = {
            "id": stored.id if stored is not None else None,
            "raw_status": record.raw_status,
            "stage": stage,
            "opened_at": record.opened_at,
            "promised_at": record.promised_at,
            "closed_at": record.closed_at,
            "advisor_ref": record.advisor_id,
            "advisor_name": record.advisor_name[:100] if record.advisor_name else None,
            "dms_updated_at": record.updated_at,
            "content_hash": digests.content,
            "payload_hash": payload,
            "customer_id": customer_id,
            "customer_hash": customer_digest,
            "vehicle_id": stored.vehicle_id if stored is not None else None,
            "lines_hash": digest_of_lines,
            "vehicle_hash": digest_of_vehicle,
        }
        self.ros.append(
            _RoWrite(
                ro_number=record.ro_number,
                values=values,
                stored=stored,
                dms_vehicle=record.vehicle,
                vehicle_moved=vehicle_moved,
                dms_lines=None if same_lines else record.lines,
                dms_customer=to_match,
            )
        )

    def _match_customers(self) -> None:
        """Match the page's changed customers together, in page order, and flush them (and
        anything else the ORM holds) so that the ROs can point at their rows."""
        pending = [(ro, ro.dms_customer) for ro in self.ros if ro.dms_customer is not None]
        matched: list[tuple[_RoWrite, Customer]] = []
        if pending:
            book = CustomerBook(
                self.session,
                group=self.rooftop.group,
                rooftop=self.rooftop,
                source=self.source,
                customers=[customer for _, customer in pending],
            )
            customers = book.match([customer for _, customer in pending])
            matched = list(zip((ro for ro, _ in pending), customers, strict=True))
        self.session.flush()
        # Held while the page's hooks run: the session holds its objects weakly, and the
        # status texts read these customers (found in the session, not queried again).
        self.customers = [customer for _, customer in matched]
        for ro, customer in matched:
            ro.values["customer_id"] = customer.id
            if ro.stored is None or ro.stored.customer_id != customer.id:
                ro.vehicle_moved = True  # the vehicle may take its owner

    def write(self) -> None:
        """Write the planned ROs: vehicles, ROs, lines, events, in that order."""
        session = self.session
        self._match_customers()  # rows (flushed) before the ROs point at them
        self._write_vehicles()
        new = [ro for ro in self.ros if ro.is_new]
        rows = [
            {**ro.values, "rooftop_id": self.rooftop.id, "ro_number": ro.ro_number} for ro in new
        ]
        for row in rows:
            del row["id"]
        for ro, ro_id in zip(
            new, bulk.insert_returning_ids(session, writes.RO_TABLE, rows), strict=True
        ):
            ro.values["id"] = ro_id
        existing = [ro for ro in self.ros if not ro.is_new]
        fixed: dict[str, Any] = {"updated_at": utcnow()}
        if any(ro.stored is not None and ro.stored.missing_polls for ro in existing):
            fixed.update(missing_polls=0, missing_since=None)  # back from a snapshot's gap
        bulk.update_by_id(
            session,
            writes.RO_TABLE,
            [ro.values for ro in existing],
            _moved_columns(existing),
            fixed,
        )
        self._write_lines()
        writes.insert_events(session, self._events())
        # ORM copies of what was just written, if the caller holds any, are stale now.
        for instance in list(session.identity_map.values()):
            if isinstance(instance, RepairOrder | RoLine | Vehicle):
                session.expire(instance)

    def _write_vehicles(self) -> None:
        moved = [ro for ro in self.ros if ro.vehicle_moved]
        if not moved:
            return
        vins = {ro.dms_vehicle.vin for ro in moved if ro.dms_vehicle and ro.dms_vehicle.vin}
        ids = {ro.stored.vehicle_id for ro in moved if ro.stored and ro.stored.vehicle_id}
        vehicles = PageVehicles(self.session, group_id=self.rooftop.group_id, vins=vins, ids=ids)
        placed = [
            vehicles.place(ro.stored, ro.dms_vehicle, customer_id=ro.values["customer_id"])
            for ro in moved
        ]
        vehicles.write(self.session)
        for ro, vehicle in zip(moved, placed, strict=True):
            if vehicle is not None:
                ro.values["vehicle_id"] = vehicle.id

    def _write_lines(self) -> None:
        relisted = [ro for ro in self.ros if ro.dms_lines is not None]
        if not relisted:
            return
        stored = writes.stored_lines(
            self.session, [ro.values["id"] for ro in relisted if not ro.is_new]
        )
        inserts: list[dict[str, Any]] = []
        updates: dict[int, dict[str, Any]] = {}
        for ro in relisted:
            assert ro.dms_lines is not None
            ro_id = ro.values["id"]
            by_code = stored.get(ro_id, {})
            for dms_line in ro.dms_lines:
                line = by_code.get(dms_line.line_code)
                if line is None:
                    line = self._new_line(ro_id, dms_line)
                    inserts.append(line)
                    by_code[dms_line.line_code] = line
                    ro.line_changes.append((dms_line.line_code, None))
                    continue
                previous = line["status"]
                if _sync_line(line, dms_line, at=self.at) and "id" in line:
                    updates[line["id"]] = line
                if previous != line["status"]:
                    ro.line_changes.append((dms_line.line_code, previous))
        bulk.insert_rows(self.session, writes.LINE_TABLE, inserts)
        bulk.update_by_id(
            self.session, writes.LINE_TABLE, list(updates.values()), writes.LINE_COLUMNS
        )

    def _new_line(self, ro_id: int, dms_line: DmsLine) -> dict[str, Any]:
        return {
            "repair_order_id": ro_id,
            "line_code": dms_line.line_code,
            "op_code": dms_line.op_code,
            "description": dms_line.description[:300],
            "amount_cents": dms_line.amount_cents,
            "status": dms_line.status,
            "status_changed_at": self.at,
            "customer_approved_at": self.at if dms_line.status == "approved" else None,
            "note": _note(dms_line),
        }

    def _events(self) -> list[dict[str, Any]]:
        """The `ro_event` rows the page makes (a stage move, a promised time moved)."""
        events = []
        for ro in self.ros:
            values, stored = ro.values, ro.stored
            previous_stage = stored.stage if stored is not None else None
            if stored is None or previous_stage != values["stage"]:
                events.append(
                    {
                        "repair_order_id": values["id"],
                        "kind": "stage",
                        "from_stage": previous_stage,
                        "to_stage": values["stage"],
                        "detail": {"raw_status": values["raw_status"]},
                        "at": self.at,
                    }
                )
            if stored is not None and stored.promised_at != values["promised_at"]:
                events.append(
                    {
                        "repair_order_id": values["id"],
                        "kind": "promised",
                        "from_stage": values["stage"],
                        "to_stage": values["stage"],
                        "detail": {
                            "from": iso(stored.promised_at),
                            "to": iso(values["promised_at"]),
                        },
                        "at": self.at,
                    }
                )
        return events

    def changes(self) -> list[RepairOrderChange]:
        """The page's changes for the hooks, with the ROs (and lines) loaded in one query."""
        loaded: dict[int, RepairOrder] = {}
        for chunk in chunks([ro.values["id"] for ro in self.ros]):
            query = (
                select(RepairOrder)
                .where(one_of(self.session, RepairOrder.id, chunk))
                .options(selectinload(RepairOrder.lines), joinedload(RepairOrder.vehicle))
                .execution_options(populate_existing=True)
            )
            loaded.update((ro.id, ro) for ro in self.session.scalars(query))
        changes = []
        for ro in self.ros:
            orm = loaded[ro.values["id"]]
            lines = {line.line_code: line for line in orm.lines}
            changes.append(
                RepairOrderChange(
                    ro=orm,
                    rooftop=self.rooftop,
                    is_new=ro.is_new,
                    previous_stage=ro.stored.stage if ro.stored is not None else None,
                    previous_promised_at=ro.stored.promised_at if ro.stored else None,
                    at=self.at,
                    line_changes=tuple(
                        LineChange(line=lines[code], previous_status=previous)
                        for code, previous in ro.line_changes
                    ),
                )
            )
        return changes


# The RO columns `KnownRo` holds the stored value of: a page sets them only if they moved.
KNOWN_COLUMNS = (
    "stage",
    "promised_at",
    "content_hash",
    "payload_hash",
    "customer_id",
    "customer_hash",
    "vehicle_id",
    "lines_hash",
    "vehicle_hash",
)


def _moved_columns(ros: list[_RoWrite]) -> dict[str, TypeEngine[Any]]:
    """The columns to set on a page's stored ROs: each one `KnownRo` cannot vouch for, and
    each one it can that moved on at least one of them. Every column set is decoded from the
    batch for every row: a page of 1,000 status moves is updated in 20 ms setting six
    columns, 27 ms setting all sixteen."""
    values, stored = [ro.values for ro in ros], [ro.stored for ro in ros]

    def moved(name: str) -> bool:  # compared in C: 9 columns x 2,500 ROs in a poll
        return any(map(ne, map(itemgetter(name), values), map(attrgetter(name), stored)))

    return {
        name: kind
        for name, kind in writes.RO_COLUMNS.items()
        if name not in KNOWN_COLUMNS or moved(name)
    }


def _sync_line(line: dict[str, Any], dms_line: DmsLine, *, at: datetime) -> bool:
    """Bring a line's columns to what the DMS says; whether anything moved."""
    moved = False
    if line["status"] != dms_line.status:
        line["status"], line["status_changed_at"] = dms_line.status, at
        moved = True
    if dms_line.status == "approved" and line["customer_approved_at"] is None:
        line["customer_approved_at"] = at
        moved = True
    for name, value in (
        ("op_code", dms_line.op_code),
        ("description", dms_line.description[:300]),
        ("amount_cents", dms_line.amount_cents),
        ("note", _note(dms_line)),
    ):
        if line[name] != value:
            line[name] = value
            moved = True
    return moved


def _note(dms_line: DmsLine) -> str | None:
    return None if dms_line.note is None else dms_line.note[:1000]
