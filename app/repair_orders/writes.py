"""What a poll writes for a page of repair orders: the tables, the columns it sets on each,
and the reads and inserts of its own (events, stored lines, vehicles). The set-based
statements themselves are `app.bulk`'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Table,
    bindparam,
    insert,
    or_,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from app.bulk import ManyPlan, batch_rows, document, execute_many, plan_many
from app.db import UTCDateTime, chunks, is_postgres, one_of
from app.repair_orders.models import RepairOrder, RoEvent, RoLine, Vehicle

RO_TABLE = cast(Table, RepairOrder.__table__)
LINE_TABLE = cast(Table, RoLine.__table__)
VEHICLE_TABLE = cast(Table, Vehicle.__table__)
EVENT_TABLE = cast(Table, RoEvent.__table__)

# The columns a poll writes on a changed RO, with the type of each batch array.
RO_COLUMNS: dict[str, TypeEngine[Any]] = {
    "id": Integer(),
    "raw_status": String(),
    "stage": String(),
    "opened_at": UTCDateTime(),
    "promised_at": UTCDateTime(),
    "closed_at": UTCDateTime(),
    "advisor_ref": String(),
    "advisor_name": String(),
    "dms_updated_at": UTCDateTime(),
    "content_hash": String(),
    "payload_hash": String(),
    "customer_id": Integer(),
    "customer_hash": String(),
    "vehicle_id": Integer(),
    "lines_hash": String(),
    "vehicle_hash": String(),
}
LINE_COLUMNS: dict[str, TypeEngine[Any]] = {
    "id": Integer(),
    "op_code": String(),
    "description": String(),
    "amount_cents": Integer(),
    "status": String(),
    "status_changed_at": UTCDateTime(),
    "customer_approved_at": UTCDateTime(),
    "note": String(),
}
VEHICLE_COLUMNS: dict[str, TypeEngine[Any]] = {
    "id": Integer(),
    "year": Integer(),
    "make": String(),
    "model": String(),
    "customer_id": Integer(),
}
EVENT_COLUMNS: dict[str, TypeEngine[Any]] = {
    "repair_order_id": Integer(),
    "kind": String(),
    "from_stage": String(),
    "to_stage": String(),
    "detail": JSON(),
    "at": UTCDateTime(),
}
STORED_LINE_COLUMNS = (
    "id",
    "repair_order_id",
    "line_code",
    "op_code",
    "description",
    "amount_cents",
    "status",
    "status_changed_at",
    "customer_approved_at",
    "note",
)


def insert_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """The page's `ro_event` rows: one INSERT ... SELECT on PostgreSQL, else an executemany."""
    if not events:
        return
    if is_postgres(session):
        session.execute(_insert_events_from_batch(), {"batch": document(events, EVENT_COLUMNS)})
        return
    connection = session.connection()
    execute_many(connection, _insert_events_many(connection.dialect), events)


@lru_cache(maxsize=1)
def _insert_events_from_batch() -> Any:
    """PostgreSQL: `INSERT INTO ro_event ... SELECT` from the batch, built once."""
    names = list(EVENT_COLUMNS)
    batch = batch_rows(EVENT_COLUMNS)
    return insert(EVENT_TABLE).from_select(names, select(*(batch.c[name] for name in names)))


@lru_cache(maxsize=4)
def _insert_events_many(dialect: Dialect) -> ManyPlan:
    """SQLite: the `ro_event` INSERT for executemany, planned once."""
    names = list(EVENT_COLUMNS)
    statement = insert(EVENT_TABLE).values(**{name: bindparam(f"b_{name}") for name in names})
    return plan_many(statement, dialect)


def stored_lines(session: Session, ro_ids: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """RO id -> line code -> the stored line's columns (no ORM objects)."""
    found: dict[int, dict[str, dict[str, Any]]] = {ro_id: {} for ro_id in ro_ids}
    columns = [LINE_TABLE.c[name] for name in STORED_LINE_COLUMNS]
    for chunk in chunks(ro_ids):
        query = select(*columns).where(one_of(session, LINE_TABLE.c.repair_order_id, chunk))
        for row in session.execute(query).mappings():
            found[row["repair_order_id"]][row["line_code"]] = dict(row)
    return found


def vehicles_of(
    session: Session, *, group_id: int, vins: set[str], ids: set[int]
) -> list[dict[str, Any]]:
    """The group's vehicles with these VINs or ids, as plain rows."""
    columns = [VEHICLE_TABLE.c[name] for name in (*VEHICLE_COLUMNS, "vin")]
    found: dict[int, dict[str, Any]] = {}
    wanted = [("vin", value) for value in sorted(vins)] + [("id", value) for value in sorted(ids)]
    for chunk in chunks(wanted):
        chunk_vins = [value for kind, value in chunk if kind == "vin"]
        chunk_ids = [value for kind, value in chunk if kind == "id"]
        query = select(*columns).where(
            VEHICLE_TABLE.c.group_id == group_id,
            or_(VEHICLE_TABLE.c.vin.in_(chunk_vins), VEHICLE_TABLE.c.id.in_(chunk_ids)),
        )
        found.update((row["id"], dict(row)) for row in session.execute(query).mappings())
    return list(found.values())
