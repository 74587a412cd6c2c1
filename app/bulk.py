"""Set-based writes of many rows: one statement per table and kind of write.

A poll that changes 2,500 ROs, or matches 1,000 new customers, writes them with a
handful of statements instead of an ORM flush of thousands of objects. PostgreSQL
takes a batch as one JSON parameter (`UPDATE ... FROM` / `INSERT ... SELECT` over
its rows: one round trip, one statement text whatever the batch size); SQLite gets
an executemany, which its driver loops in C. Inserts return the new ids where the
caller needs them, in the order of its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from app.db import UTCDateTime, is_postgres


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
    fixed = dict(fixed or {})
    if is_postgres(session):
        statement = _update_from_batch(table, tuple(columns.items()), tuple(fixed))
        parameters = {f"fixed_{name}": value for name, value in fixed.items()}
        session.execute(statement, {"batch": document(rows, columns), **parameters})
        return
    connection = session.connection()
    names = tuple(name for name in columns if name != "id")
    plan = _update_many(table, (*names, *fixed), connection.dialect)
    execute_many(connection, plan, [{**row, **fixed} for row in rows] if fixed else rows)


def insert_returning_ids(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert `rows` (each with the same keys); their new ids, in the order of `rows`."""
    if not rows:
        return []
    if is_postgres(session):
        statement = _insert_from_batch(table, tuple(rows[0]), returning=True)
        # Rows go in in batch order (ORDER BY), so the sequence hands out ascending ids.
        return sorted(session.execute(statement, _batch_parameters(table, rows)).scalars())
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, list(rows)).scalars())


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    unless_taken: tuple[str, ...] = (),
) -> None:
    """Insert `rows` (each with the same keys), reading nothing back. `unless_taken`: the
    columns of a unique constraint; a row whose values are taken already is skipped
    (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    if is_postgres(session):
        statement = _insert_from_batch(table, tuple(rows[0]), unless_taken=unless_taken)
        session.execute(statement, _batch_parameters(table, rows))
        return
    plain = sqlite.insert(table)
    session.execute(
        plain.on_conflict_do_nothing(index_elements=list(unless_taken)) if unless_taken else plain,
        list(rows),
    )


def _batch_parameters(table: Table, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {"batch": document(rows, _batch_types(table, tuple(rows[0])))}


def _batch_types(table: Table, names: tuple[str, ...]) -> dict[str, TypeEngine[Any]]:
    """Each column's type to read it back from a batch as; strings without their length
    (a CAST to VARCHAR(n) would cut a long value short, where the INSERT refuses it)."""
    return {
        name: String() if isinstance(table.c[name].type, String) else table.c[name].type
        for name in names
    }


@lru_cache(maxsize=64)
def _update_from_batch(
    table: Table, columns: tuple[tuple[str, TypeEngine[Any]], ...], fixed: tuple[str, ...]
) -> Any:
    """PostgreSQL: `UPDATE table ... FROM (the batch)` for one shape of batch, built once.

    Building the expression costs about a millisecond of CPU each time, as much as the
    database spends on a small batch; a poll writes a few shapes over and over. The batch
    document and the fixed values are bind parameters (`batch`, `fixed_<column>`).
    """
    batch = batch_rows(dict(columns))
    values: dict[str, Any] = {name: batch.c[name] for name, _ in columns if name != "id"}
    values.update({name: bindparam(f"fixed_{name}", type_=table.c[name].type) for name in fixed})
    return update(table).where(table.c.id == batch.c.id).values(**values)


@lru_cache(maxsize=64)
def _insert_from_batch(
    table: Table,
    names: tuple[str, ...],
    *,
    returning: bool = False,
    unless_taken: tuple[str, ...] = (),
) -> Any:
    """PostgreSQL: `INSERT INTO table (names) SELECT ... FROM (the batch)` in batch order,
    built once per shape. An INSERT of 1,000 rows as VALUES binds 20,000 parameters, and
    psycopg re-parses such a statement on every execution: a third of a first poll's
    inserts went to that; the batch is one parameter."""
    batch = batch_rows(_batch_types(table, names), ordered=True)
    rows = select(*(batch.c[name] for name in names)).order_by(batch.c.position)
    statement = postgresql.insert(table).from_select(list(names), rows)
    if unless_taken:
        statement = statement.on_conflict_do_nothing(index_elements=list(unless_taken))
    return statement.returning(table.c.id) if returning else statement


def batch_rows(columns: Mapping[str, TypeEngine[Any]], *, ordered: bool = False) -> Any:
    """PostgreSQL: the rows of the `batch` parameter (`_document`), read back as typed columns
    (and, `ordered`, each row's place in the batch as `position`).

    One text parameter: psycopg dumps a Python list as an array element by element,
    which for a page's 15 columns x 2,500 ROs costs more than the UPDATE itself; the
    JSON encoder does it in a few milliseconds. JSONB, because `->>` on plain JSON
    re-parses the row for every column; arrays, because keys cost as much to encode
    as the values.
    """
    document = bindparam("batch", type_=Text())
    values = func.jsonb_array_elements(sql_cast(document, JSONB()))
    element = (
        values.table_valued("value", with_ordinality="position")
        if ordered
        else values.table_valued("value")
    ).render_derived(name="element")
    fields: list[Any] = []
    for index, (name, kind) in enumerate(columns.items()):
        position = literal_column(str(index), Integer())
        if isinstance(kind, JSON):
            field = sql_cast(element.c.value.op("->", return_type=JSONB())(position), kind)
        else:
            field = sql_cast(element.c.value.op("->>", return_type=Text())(position), kind)
        fields.append(field.label(name))
    if ordered:
        fields.append(element.c.position)
    return select(*fields).subquery("batch")


def document(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, TypeEngine[Any]]) -> str:
    """`rows` as the JSON text `_batch` reads: an array of each row's values in the order
    of `columns`. orjson, six times faster than `json` here; times go through `_IsoTimes`
    (ISO 8601 with their offset, a naive one refused) rather than orjson's own format."""
    names = list(columns)
    pick = itemgetter(*names)  # a tuple per row (a bare value when there is one column)
    arrays = [pick(row) for row in rows] if len(names) > 1 else [[pick(row)] for row in rows]
    return orjson.dumps(
        arrays, default=_IsoTimes(), option=orjson.OPT_PASSTHROUGH_DATETIME
    ).decode()


class _IsoTimes(dict[datetime, str]):
    """ISO 8601 for the datetimes of a batch, each distinct one formatted once (a page's
    ROs share their opened and promised times through the parser's cache)."""

    def __call__(self, value: Any) -> str:
        if not isinstance(value, datetime):
            raise TypeError(f"cannot send {type(value).__name__} in a batch")
        return self[value]

    def __missing__(self, value: datetime) -> str:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; use an aware UTC time")
        formatted = self[value] = value.isoformat()
        return formatted


# SQLite's executemany, planned once per statement shape: its SQL and, per bind in order,
# the row key it takes, the column's bind processor and whether to remember conversions.
ManyPlan = tuple[str, tuple[tuple[str, Callable[[Any], Any] | None, bool], ...]]


@lru_cache(maxsize=64)
def _update_many(table: Table, names: tuple[str, ...], dialect: Dialect) -> ManyPlan:
    """SQLite: `UPDATE table SET <names> WHERE id = ?` for executemany, planned once."""
    statement = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(**{name: bindparam(f"b_{name}") for name in names})
    )
    return plan_many(statement, dialect)


def plan_many(statement: Any, dialect: Dialect) -> ManyPlan:
    """The statement compiled (bind `b_<key>` takes the row's `<key>`), with the columns'
    own bind processors. Building and compiling costs about a millisecond; a full re-read
    writes two statements on each of its fifty pages."""
    compiled = statement.compile(dialect=dialect)
    order = compiled.positiontup
    assert order is not None, "a positional paramstyle (SQLite's qmark) is expected"
    binds = []
    for bind_name in order:
        kind = compiled.binds[bind_name].type
        process = kind.dialect_impl(dialect).bind_processor(dialect)
        remember = process is not None and isinstance(kind, DateTime | UTCDateTime | JSON)
        binds.append((bind_name.removeprefix("b_"), process, remember))
    return compiled.string, tuple(binds)


def execute_many(connection: Connection, plan: ManyPlan, rows: Sequence[Mapping[str, Any]]) -> None:
    """SQLite: an executemany straight to the driver, values passed through the columns'
    own bind processors. SQLAlchemy's per-row parameter building costs as much as
    SQLite's update itself; the statement text is still SQLAlchemy's."""
    sql, binds = plan
    processors = [
        (key, _remembered(process) if remember and process is not None else process)
        for key, process, remember in binds
    ]
    parameters = [
        tuple(row[key] if process is None else process(row[key]) for key, process in processors)
        for row in rows
    ]
    connection.exec_driver_sql(sql, parameters)


def _remembered(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A bind processor that converts each distinct value once: a page's rows share their
    times (the poll's own, the DMS's opened and promised times through the parser's
    cache) and mostly empty event details, and converting a datetime for SQLite costs
    more than the row's update. Unhashable values (a detail dict) are converted each time.
    """
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            converted = seen[value] = process(value)
            return converted
        except TypeError:
            return process(value)

    return convert
