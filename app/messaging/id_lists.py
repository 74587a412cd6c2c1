"""A batch's ids as ONE bound text parameter, so its statements are built once and cached.

An IN list of a claimed batch's hundred ids is a hundred parameters: SQLAlchemy expands
them on every execution, and psycopg re-parses (never prepares) a statement with more
than 50. Here PostgreSQL reads `= ANY(CAST(:ids AS INTEGER[]))` and SQLite
`IN (SELECT value FROM json_each(:ids))`, each bound to one short string
(`ids_value`), which costs the driver nothing to send.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Integer, Text, all_, any_, bindparam, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import literal_column


def in_ids(
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    name: str,
    dialect: str,
    *,
    negate: bool = False,
) -> ColumnElement[bool]:
    """`column IN (the ids bound as :name)`, or NOT IN; bind `ids_value(ids, dialect)`."""
    value = bindparam(name, type_=Text())
    if dialect == "postgresql":
        array = sql_cast(value, ARRAY(Integer()))
        return column != all_(array) if negate else column == any_(array)
    listed = select(literal_column("value", Integer())).select_from(func.json_each(value))
    return column.not_in(listed) if negate else column.in_(listed)


def ids_value(ids: Iterable[int], dialect: str) -> str:
    """The text `in_ids` binds: `{1,2,3}` (a PostgreSQL array) or `[1,2,3]` (JSON)."""
    joined = ",".join(str(int(i)) for i in ids)
    return f"{{{joined}}}" if dialect == "postgresql" else f"[{joined}]"
