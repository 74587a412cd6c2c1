"""Pacing per sender number, shared by every worker through the database.

A long code sends about one message a second; Twilio queues the excess and
drops it after hours (30001). Each dispatch run reserves the slots its batch
needs from the sender's row in the claim transaction, then each send waits for
its slot. Two workers never get the same slot, so N workers together keep the
rooftop's `send_rate_per_second`, not N times it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.messaging.models import SenderPace


def reserve_slots(
    session: Session, *, sender: str, count: int, rate: float, now: datetime
) -> list[datetime]:
    """Reserve `count` consecutive send times for `sender` at `rate` per second.

    Call inside the claim transaction: the row lock (PostgreSQL) or the write lock
    (SQLite) makes the reservation atomic across workers.
    """
    if count <= 0:
        return []
    step = timedelta(seconds=1.0 / rate)
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    session.execute(
        insert(SenderPace)
        .values(sender=sender, next_slot_at=now)
        .on_conflict_do_nothing(index_elements=["sender"])
    )
    pace = session.scalars(
        select(SenderPace)
        .where(SenderPace.sender == sender)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    first = max(pace.next_slot_at, now)
    pace.next_slot_at = first + step * count
    return [first + step * i for i in range(count)]
