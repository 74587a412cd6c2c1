"""Pacing per sender number, shared by every worker through the database.

A long code sends about one message a second; Twilio queues the excess and
drops it after hours (30001). Each dispatch run reserves the slots its batch
needs from the sender's row in the claim transaction, then each send waits for
its slot. Two workers never get the same slot, so N workers together keep the
rooftop's `send_rate_per_second`, not N times it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Interval, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.messaging.models import SenderPace


def reserve_slots(
    session: Session, *, sender: str, count: int, rate: float, now: datetime
) -> list[datetime]:
    """Reserve `count` consecutive send times for `sender` at `rate` per second.

    Call inside the claim transaction: the row lock (PostgreSQL) or the write lock
    (SQLite) makes the reservation atomic across workers. PostgreSQL does it in one
    upsert; SQLite, which holds its write lock already, reads then upserts.
    """
    if count <= 0:
        return []
    step = timedelta(seconds=1.0 / rate)
    span = step * count
    column = SenderPace.__table__.c.next_slot_at
    if is_postgres(session):
        at = literal(now, column.type)
        upsert = postgresql.insert(SenderPace).values(sender=sender, next_slot_at=now + span)
        end = session.scalars(
            upsert.on_conflict_do_update(
                index_elements=["sender"],
                set_={
                    "next_slot_at": func.greatest(SenderPace.next_slot_at, at, type_=column.type)
                    + literal(span, Interval())
                },
            ).returning(SenderPace.next_slot_at)
        ).one()
        first = end - span
    else:
        stored = session.scalar(select(SenderPace.next_slot_at).where(SenderPace.sender == sender))
        first = now if stored is None else max(stored, now)
        stored_upsert = sqlite.insert(SenderPace).values(sender=sender, next_slot_at=first + span)
        session.execute(
            stored_upsert.on_conflict_do_update(
                index_elements=["sender"],
                set_={"next_slot_at": stored_upsert.excluded.next_slot_at},
            )
        )
    return [first + step * i for i in range(count)]
