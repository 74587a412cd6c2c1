"""Pacing per sender number, shared by every worker through the database.

A long code sends about one message a second; Twilio queues the excess and
drops it after hours (30001). Each dispatch run reserves the slots its batch
needs from the sender's row in the claim transaction, then each send waits for
its slot. Two workers never get the same slot, so N workers together keep the
rooftop's `send_rate_per_second`, not N times it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import String, Table, Text, bindparam, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy import column as sql_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.messaging.models import SenderPace

# An UPDATE to run in the reservation's statement, with its parameters.
Along = tuple[Any, Mapping[str, Any]]


def reserve_batch_slots(
    session: Session,
    *,
    wanted: Mapping[str, tuple[int, float]],
    now: datetime,
    along: Along | None = None,
) -> dict[str, list[datetime]]:
    """Reserve consecutive send times for each sender: `wanted[sender] = (count, rate)`.

    Call inside the claim transaction: the row locks (PostgreSQL) or the write lock
    (SQLite) make the reservation atomic across workers. PostgreSQL does every sender
    of a batch in one upsert, locking the senders' rows in name order (two workers
    never lock in turn); SQLite, which holds its write lock already, reads then upserts.

    `along`: an UPDATE of the same transaction (and its parameters) to run with the
    reservation. PostgreSQL runs both as one statement (the UPDATE a data-modifying
    CTE of the upsert): the claim's UPDATE and its slots cost one round trip, not two.
    """
    spans = {
        sender: (timedelta(seconds=1.0 / rate), count)
        for sender, (count, rate) in sorted(wanted.items())
        if count > 0
    }
    postgres = is_postgres(session)
    if along is not None and not (postgres and spans):
        session.connection().execute(*along)
        along = None
    if not spans:
        return {}
    if postgres:
        ends = _reserve_postgres(session, spans, now, along)
    else:
        ends = _reserve_sqlite(session, spans, now)
    return {
        sender: [ends[sender] - step * (count - i) for i in range(count)]
        for sender, (step, count) in spans.items()
    }


def _reserve_postgres(
    session: Session,
    spans: Mapping[str, tuple[timedelta, int]],
    now: datetime,
    along: Along | None,
) -> dict[str, datetime]:
    """One upsert for all senders (with `along` as its CTE); each row's end, read back."""
    proposed = [
        {"sender": sender, "end": now + step * count} for sender, (step, count) in spans.items()
    ]
    parameters = {"proposed": orjson.dumps(proposed).decode(), "now": now}
    statement = _postgres_upsert()
    if along is not None:
        statement = _with_cte(statement, along[0])
        parameters = {**along[1], **parameters}
    returned = session.connection().execute(statement, parameters).all()
    return {sender: end for sender, end in returned}


def _reserve_sqlite(
    session: Session, spans: Mapping[str, tuple[timedelta, int]], now: datetime
) -> dict[str, datetime]:
    connection = session.connection()
    read, upsert = _sqlite_statements()
    stored = dict(connection.execute(read, {"senders": list(spans)}).all())
    ends = {
        sender: max(stored.get(sender) or now, now) + step * count
        for sender, (step, count) in spans.items()
    }
    connection.execute(upsert, [{"sender": sender, "end": end} for sender, end in ends.items()])
    return ends


# Built once each. The senders go to PostgreSQL as one JSON parameter: a multi-row VALUES
# has no cache key, so SQLAlchemy compiled it afresh on every claim, which cost more than
# the database spends on it.


@lru_cache(maxsize=1)
def _postgres_upsert() -> Any:
    column = _TABLE.c.next_slot_at
    proposed = (
        func.jsonb_to_recordset(sql_cast(bindparam("proposed", type_=Text()), JSONB()))
        .table_valued(sql_column("sender", String()), sql_column("end", column.type))
        .render_derived(name="proposed", with_types=True)
    )
    # Inserted (and so locked) in name order: two workers never lock in turn.
    rows = select(proposed.c.sender, proposed.c.end).order_by(proposed.c.sender)
    upsert = postgresql.insert(_TABLE).from_select(["sender", "next_slot_at"], rows)
    at = bindparam("now", type_=column.type)
    # The row proposed for insert ends `span` after now: that span is added to the later
    # of the stored next slot and now.
    span = upsert.excluded.next_slot_at - at
    return upsert.on_conflict_do_update(
        index_elements=["sender"],
        set_={"next_slot_at": func.greatest(column, at, type_=column.type) + span},
    ).returning(_TABLE.c.sender, column)


@lru_cache(maxsize=8)
def _with_cte(upsert: Any, update: Any) -> Any:
    """The upsert with an UPDATE run first, as a data-modifying CTE: built once per UPDATE.
    Both take the same `now`; the UPDATE's other parameters must not clash with the
    upsert's (`proposed`)."""
    return upsert.add_cte(update.cte("along"))


@lru_cache(maxsize=1)
def _sqlite_statements() -> tuple[Any, Any]:
    read = select(_TABLE.c.sender, _TABLE.c.next_slot_at).where(
        _TABLE.c.sender.in_(bindparam("senders", expanding=True))
    )
    upsert = sqlite.insert(_TABLE).values(
        sender=bindparam("sender"), next_slot_at=bindparam("end", type_=_TABLE.c.next_slot_at.type)
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=["sender"], set_={"next_slot_at": upsert.excluded.next_slot_at}
    )
    return read, upsert


_TABLE = cast(Table, SenderPace.__table__)
