"""Set-based writes for a page of repair orders: one statement per table and kind.

A poll that changes 2,500 ROs writes them with a handful of statements instead of
an ORM flush of thousands of objects. PostgreSQL updates a batch with one
`UPDATE ... FROM json_to_recordset(...)` (one round trip, one statement text whatever
the batch size, its rows in one JSON parameter); SQLite gets an executemany, which
its driver loops in C. Inserts use `INSERT ... RETURNING id` where the ids are needed
(insertmanyvalues batches them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from app.db import UTCDateTime, is_postgres
from app.repair_orders.models import RepairOrder, RoEvent, RoLine, Vehicle

_CHUNK = 900  # stays under every backend's bound-parameter limit

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
}
LINE_COLUMNS: dict[str, TypeEngine[Any]] = {
    "id": Integer(),
    "op_code": String(),
    "description": String(),
    "amount_cents": Integer(),
    "status": String(),
    "status_changed_at": UTCDateTime(),
    "customer_approved_at": UTCDateTime(),
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
)


def chunks(items: Sequence[Any], size: int = _CHUNK) -> list[Sequence[Any]]:
    """`items` in slices small enough for any backend's parameter limit."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def update_by_id(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, TypeEngine[Any]],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Set `columns` (and the `fixed` values) on each row of `table` matched by its id."""
    if not rows:
        return
    names = list(columns)
    fixed = dict(fixed or {})
    if is_postgres(session):
        batch = _recordset(rows, columns)
        values = {name: batch.c[name] for name in names if name != "id"}
        session.execute(update(table).where(table.c.id == batch.c.id).values(**values, **fixed))
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(**{name: bindparam(f"b_{name}") for name in names if name != "id"}, **fixed)
    )
    session.execute(statement, [{f"b_{name}": row[name] for name in names} for row in rows])


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert `rows`; their new ids, in the order of `rows`."""
    if not rows:
        return []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, list(rows)).scalars())


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` with one executemany (nothing is read back)."""
    if rows:
        session.execute(insert(table), list(rows))


def insert_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """The page's `ro_event` rows: one INSERT ... SELECT on PostgreSQL, else an executemany."""
    if not events:
        return
    if is_postgres(session):
        batch = _recordset(events, EVENT_COLUMNS)
        names = list(EVENT_COLUMNS)
        session.execute(
            insert(EVENT_TABLE).from_select(names, select(*(batch.c[name] for name in names)))
        )
        return
    session.execute(insert(EVENT_TABLE), list(events))


def _recordset(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, TypeEngine[Any]]) -> Any:
    """`rows` as one JSON parameter read back as typed columns by `json_to_recordset`.

    One text parameter: psycopg dumps a Python list as an array element by element,
    which for a page's 15 columns x 2,500 ROs costs more than the UPDATE itself; the
    C JSON encoder does it in a few milliseconds. Times go as ISO 8601 with offset.
    """
    names = list(columns)
    document = json.dumps(
        [{name: row[name] for name in names} for row in rows], default=_iso, ensure_ascii=False
    )
    return (
        func.json_to_recordset(sql_cast(literal(document, Text()), JSON()))
        .table_valued(*(column(name, columns[name]) for name in names))
        .render_derived(with_types=True)
    )


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; use an aware UTC time")
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} in a batch")


def stored_lines(session: Session, ro_ids: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """RO id -> line code -> the stored line's columns (no ORM objects)."""
    found: dict[int, dict[str, dict[str, Any]]] = {ro_id: {} for ro_id in ro_ids}
    columns = [LINE_TABLE.c[name] for name in STORED_LINE_COLUMNS]
    for chunk in chunks(ro_ids):
        query = select(*columns).where(LINE_TABLE.c.repair_order_id.in_(chunk))
        for row in session.execute(query).mappings():
            found[row["repair_order_id"]][row["line_code"]] = dict(row)
    return found


def vehicles_by_vin(
    session: Session, *, group_id: int, vins: Sequence[str]
) -> list[dict[str, Any]]:
    """The group's vehicles with these VINs, as plain rows."""
    columns = [VEHICLE_TABLE.c[name] for name in (*VEHICLE_COLUMNS, "vin")]
    found: list[dict[str, Any]] = []
    for chunk in chunks(sorted(vins)):
        query = select(*columns).where(
            VEHICLE_TABLE.c.group_id == group_id, VEHICLE_TABLE.c.vin.in_(chunk)
        )
        found.extend(dict(row) for row in session.execute(query).mappings())
    return found
