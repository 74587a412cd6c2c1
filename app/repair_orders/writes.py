"""What a poll writes for a page of repair orders: the tables, the columns it sets on each,
and the reads and inserts of its own (events, stored lines, vehicles). The set-based
statements themselves are `app.bulk`'s."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Table,
    Text,
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
    plan, serialise = _insert_events_many(connection.dialect)
    execute_many(connection, plan, _serialised_details(events, serialise))


def _serialised_details(
    events: Sequence[Mapping[str, Any]], serialise: Callable[[Any], Any]
) -> list[Mapping[str, Any]]:
    """The events with each `detail` as the JSON column would store it, each distinct detail
    serialised once: a page's stage moves share a handful of details ({"raw_status": "WIP"}),
    and serialising one per row was three quarters of the CPU spent binding a page's events
    for SQLite."""
    done: dict[tuple[Any, ...], Any] = {}
    rows: list[Mapping[str, Any]] = []
    for event in events:
        detail = event["detail"]
        key = _detail_key(detail)
        if key is None:
            text = serialise(detail)
        elif (text := done.get(key)) is None:
            text = done[key] = serialise(detail)
        rows.append({**event, "detail": text})
    return rows


def _detail_key(detail: Any) -> tuple[Any, ...] | None:
    """A detail's flat values with their types ({"a": 1} and {"a": True} are equal dicts,
    not equal JSON), or None when it is not a dict of hashable values."""
    if type(detail) is not dict:
        return None
    key = (*detail.items(), *map(type, detail.values()))
    try:
        hash(key)
    except TypeError:  # a nested list or dict
        return None
    return key


@lru_cache(maxsize=1)
def _insert_events_from_batch() -> Any:
    """PostgreSQL: `INSERT INTO ro_event ... SELECT` from the batch, built once."""
    names = list(EVENT_COLUMNS)
    batch = batch_rows(EVENT_COLUMNS)
    return insert(EVENT_TABLE).from_select(names, select(*(batch.c[name] for name in names)))


@lru_cache(maxsize=4)
def _insert_events_many(dialect: Dialect) -> tuple[ManyPlan, Callable[[Any], Any]]:
    """SQLite: the `ro_event` INSERT for executemany, planned once, its `detail` bound as
    text already serialised; and the JSON column's own serialiser, to serialise it with."""
    binds: dict[str, Any] = {name: bindparam(f"b_{name}") for name in EVENT_COLUMNS}
    binds["detail"] = bindparam("b_detail", type_=Text())
    detail = EVENT_TABLE.c.detail.type.dialect_impl(dialect).bind_processor(dialect)
    assert detail is not None, "the JSON type serialises on every dialect"
    return plan_many(insert(EVENT_TABLE).values(**binds), dialect), detail


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
