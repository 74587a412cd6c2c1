"""Open ROs a snapshot DMS stopped listing: asked about by number, closed when gone for good.

A snapshot DMS hands over every open RO on each poll, so an open RO missing from the
snapshot has probably been closed or deleted there. It is asked about by number
(`fetch_one`, outside any transaction); still unknown after VANISHED_AFTER_POLLS polls
in a row, it is closed with a `vanished` event and handed to the change hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.dealers.models import Rooftop
from app.repair_orders.changes import ChangeHook, RepairOrderChange
from app.repair_orders.models import OPEN_STAGES, RepairOrder, RoEvent
from app.repair_orders.service import apply_records, quarantine
from integrations.dms.base import DmsAdapter, MalformedRecord

VANISHED_AFTER_POLLS = 3
CONFIRMATIONS_PER_POLL = 50  # fetch_one calls per poll, so a mass close cannot stall a poll


def confirm_vanished(
    database: Database,
    *,
    rooftop_id: int,
    adapter: DmsAdapter,
    seen_numbers: set[str],
    hooks: Sequence[ChangeHook],
    clock: Callable[[], datetime],
    begin: Callable[[Session], Rooftop],
) -> int:
    """Ask about the open ROs not in `seen_numbers`; how many were closed as vanished.

    `begin(session)` renews the poll's lease and returns the rooftop (it raises when
    the lease was lost), so each confirmation is its own short transaction.
    """
    with database.transaction() as session:
        open_ros = session.execute(
            select(RepairOrder.id, RepairOrder.ro_number)
            .where(RepairOrder.rooftop_id == rooftop_id, RepairOrder.stage.in_(OPEN_STAGES))
            .order_by(RepairOrder.id)
        ).all()
    # Compared in Python: a NOT IN over a whole snapshot would exceed parameter limits.
    missing = [row for row in open_ros if row.ro_number not in seen_numbers]
    missing = missing[:CONFIRMATIONS_PER_POLL]
    closed = 0
    for ro_id, ro_number in missing:
        raw = adapter.fetch_one(ro_number)  # network: outside any transaction
        with database.transaction() as session:
            rooftop = begin(session)
            at = clock()
            if raw is not None:
                try:
                    record = adapter.normalise(raw)
                except MalformedRecord as exc:
                    quarantine(session, rooftop_id=rooftop.id, raw=raw, reason=exc.reason, at=at)
                    continue
                apply_records(session, rooftop=rooftop, records=[record], hooks=hooks, at=at)
                continue
            ro = session.get(RepairOrder, ro_id)
            if ro is None:
                continue
            ro.missing_polls += 1
            ro.missing_since = ro.missing_since or at
            if ro.missing_polls >= VANISHED_AFTER_POLLS:
                _close_vanished(session, rooftop, ro, at, hooks)
                closed += 1
    return closed


def _close_vanished(
    session: Session,
    rooftop: Rooftop,
    ro: RepairOrder,
    at: datetime,
    hooks: Sequence[ChangeHook],
) -> None:
    previous = ro.stage
    ro.stage = "closed"
    ro.closed_at = ro.closed_at or at
    # Not the DMS's content any more: should the RO reappear, it is applied afresh.
    ro.content_hash = "vanished"
    ro.payload_hash = None
    session.add(
        RoEvent(
            repair_order_id=ro.id,
            kind="vanished",
            from_stage=previous,
            to_stage="closed",
            detail={
                "missing_polls": ro.missing_polls,
                "missing_since": ro.missing_since.isoformat() if ro.missing_since else None,
            },
            at=at,
        )
    )
    session.flush()
    change = RepairOrderChange(
        ro=ro,
        rooftop=rooftop,
        is_new=False,
        previous_stage=previous,
        previous_promised_at=ro.promised_at,
        at=at,
    )
    for hook in hooks:
        hook(session, change)
