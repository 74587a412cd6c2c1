"""Named leases in the `lease` table: one holder at a time, until it expires.

Any job that must run on one worker at a time (a rooftop's DMS poll, the
follow-up planner) takes a lease named after it, renews it while it works and
releases it when done. A holder that dies simply stops renewing; the lease
expires and another worker takes over.

The same two statements work on SQLite and PostgreSQL: a conditional UPDATE
(take it over when it is ours or expired) and an INSERT that ignores a conflict
(create it when nobody has). Both are atomic on their own, so two workers
racing for one lease can never both win. Call each function in its own short
transaction and commit at once: a lease only protects anyone once committed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import CursorResult, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.ops.models import Lease

# A released lease keeps its row, expired at the epoch: the next taker's conditional
# UPDATE finds it (one statement, no INSERT), whatever its own clock says.
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)


def acquire_lease(
    session: Session, *, name: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Take `name` for `holder` until now + ttl; False when someone else holds it unexpired.

    Re-acquiring a lease one already holds succeeds and extends it.
    """
    expires_at = now + ttl
    taken: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at <= now))
        .values(holder=holder, expires_at=expires_at, acquired_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:
        return True
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT.
    created = session.scalar(
        insert(Lease)
        .values(name=name, holder=holder, expires_at=expires_at, acquired_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(Lease.name)
    )
    return created is not None


def renew_lease(session: Session, *, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """Extend a lease we still hold; False when it expired and someone else took it."""
    renewed: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return renewed.rowcount == 1


def release_lease(session: Session, *, name: str, holder: str) -> bool:
    """Give the lease up so the next worker need not wait for it to expire (see RELEASED)."""
    released: CursorResult[tuple[()]] = session.execute(  # type: ignore[assignment]
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder, Lease.expires_at > RELEASED)
        .values(expires_at=RELEASED)
        .execution_options(synchronize_session=False)
    )
    return released.rowcount == 1


def lease_holder(session: Session, *, name: str, now: datetime) -> str | None:
    """Who holds `name` now (None when free or expired)."""
    lease = session.get(Lease, name, populate_existing=True)
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder
