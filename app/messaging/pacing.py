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
from typing import cast

from sqlalchemy import Table, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.messaging.models import SenderPace


def reserve_batch_slots(
    session: Session, *, wanted: Mapping[str, tuple[int, float]], now: datetime
) -> dict[str, list[datetime]]:
    """Reserve consecutive send times for each sender: `wanted[sender] = (count, rate)`.

    Call inside the claim transaction: the row locks (PostgreSQL) or the write lock
    (SQLite) make the reservation atomic across workers. PostgreSQL does every sender
    of a batch in one upsert, locking the senders' rows in name order (two workers
    never lock in turn); SQLite, which holds its write lock already, reads then upserts.
    """
    spans = {
        sender: (timedelta(seconds=1.0 / rate), count)
        for sender, (count, rate) in sorted(wanted.items())
        if count > 0
    }
    if not spans:
        return {}
    if is_postgres(session):
        ends = _reserve_postgres(session, spans, now)
    else:
        ends = _reserve_sqlite(session, spans, now)
    return {
        sender: [ends[sender] - step * (count - i) for i in range(count)]
        for sender, (step, count) in spans.items()
    }


def _reserve_postgres(
    session: Session, spans: Mapping[str, tuple[timedelta, int]], now: datetime
) -> dict[str, datetime]:
    """One upsert for all senders; each row's end of reservation, read back."""
    table = cast(Table, SenderPace.__table__)
    column = table.c.next_slot_at
    upsert = postgresql.insert(table).values(
        [{"sender": s, "next_slot_at": now + step * count} for s, (step, count) in spans.items()]
    )
    at = literal(now, column.type)
    # The row proposed for insert ends `span` after now: that span is added to the later
    # of the stored next slot and now.
    span = upsert.excluded.next_slot_at - at
    returned = session.execute(
        upsert.on_conflict_do_update(
            index_elements=["sender"],
            set_={"next_slot_at": func.greatest(column, at, type_=column.type) + span},
        ).returning(table.c.sender, column)
    )
    return {sender: end for sender, end in returned}


def _reserve_sqlite(
    session: Session, spans: Mapping[str, tuple[timedelta, int]], now: datetime
) -> dict[str, datetime]:
    stored = dict(
        session.execute(
            select(SenderPace.sender, SenderPace.next_slot_at).where(
                SenderPace.sender.in_(list(spans))
            )
        ).all()
    )
    ends = {
        sender: max(stored.get(sender) or now, now) + step * count
        for sender, (step, count) in spans.items()
    }
    upsert = sqlite.insert(SenderPace).values(
        [{"sender": sender, "next_slot_at": end} for sender, end in ends.items()]
    )
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=["sender"], set_={"next_slot_at": upsert.excluded.next_slot_at}
        )
    )
    return ends
