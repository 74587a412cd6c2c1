"""Customers' answers written back into the DMS, where its adapter can.

An approval or decline confirmed on the customer's page, or an approval by text, is
queued here (`queue_answers`) in the same transaction that records it, when the
rooftop's adapter writes answers back (`integrations.dms.registry.writes_answers`:
Dealertrack's UpdateRepairOrderLines with the dealer's own LineStatus codes). The
worker's `write_due` sends each due row outside any transaction, marks it written, or
retries it with a growing wait; after the last attempt the row is failed and the
advisor gets a task to enter the answer by hand, with the DMS's own words. Writing
the same status twice changes nothing, so a row two workers both send is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.conversations.tasks import open_task
from app.db import utcnow
from app.dealers.models import Rooftop
from app.repair_orders.models import DmsWrite, RepairOrder, RoLine
from integrations.dms.base import DmsAdapter, DmsError, LineAnswer, WritesLineAnswers
from integrations.dms.registry import writes_answers

if TYPE_CHECKING:
    from app.db import Database

log = logging.getLogger(__name__)

Choice = Literal["approved", "declined"]
# The wait before each retry; after the last, the row fails and the advisor is told.
RETRY_AFTER = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)
MAX_ATTEMPTS = len(RETRY_AFTER) + 1
# A row being written is pushed this far ahead, so another worker's tick skips it.
CLAIM_FOR = timedelta(minutes=2)
PAGE = 20
WRITE_NOTE = "Pitwall is writing it to the DMS"
ENTER_NOTE = "enter it in the DMS"


def writes_back(rooftop: Rooftop) -> bool:
    """Whether this rooftop's answers go back into its DMS by themselves."""
    dms = rooftop.settings.dms
    return writes_answers(dms.kind, dms.adapter_settings())


def dms_note(rooftop: Rooftop) -> str:
    """What the advisor's task says about the DMS: written by Pitwall, or to enter."""
    return WRITE_NOTE if writes_back(rooftop) else ENTER_NOTE


def queue_answers(
    session: Session,
    *,
    rooftop: Rooftop,
    ro: RepairOrder,
    answers: Sequence[tuple[RoLine, Choice]],
    source: str,
    now: datetime,
) -> bool:
    """Queue the answers for the DMS (in the caller's transaction); False when it cannot."""
    if not answers or not writes_back(rooftop):
        return False
    session.add(
        DmsWrite(
            rooftop_id=rooftop.id,
            repair_order_id=ro.id,
            ro_number=ro.ro_number,
            lines=[
                {
                    "line_code": line.line_code,
                    "op_code": line.op_code,
                    "amount_cents": line.amount_cents,
                    "choice": choice,
                }
                for line, choice in answers
            ],
            source=source,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


@dataclass(frozen=True)
class _Claimed:
    id: int
    rooftop_id: int
    repair_order_id: int
    ro_number: str
    lines: list[dict[str, object]]
    attempts: int


def write_due(
    database: Database,
    *,
    adapters: Callable[[Rooftop], DmsAdapter],
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Write the due rows to their DMSs; how many were written."""
    now = clock()
    claimed = _claim(database, now)
    written = 0
    for row in claimed:
        error = _send(database, adapters, row)
        with database.transaction() as session:
            if error is None:
                written += 1
                _mark(session, row.id, state="written", written_at=clock())
            else:
                _failed_attempt(session, row, error, now=clock())
    return written


def _claim(database: Database, now: datetime) -> list[_Claimed]:
    is_due = (DmsWrite.state == "pending", DmsWrite.next_attempt_at <= now)
    with database.reading() as session:  # the usual tick: nothing due, no write lock taken
        if session.scalar(select(DmsWrite.id).where(*is_due).limit(1)) is None:
            return []
    with database.transaction() as session:
        due = session.scalars(
            select(DmsWrite).where(*is_due).order_by(DmsWrite.id).limit(PAGE)
        ).all()
        claimed = []
        for row in due:
            taken = session.execute(
                update(DmsWrite)
                .where(DmsWrite.id == row.id, DmsWrite.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + CLAIM_FOR)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                claimed.append(
                    _Claimed(
                        row.id,
                        row.rooftop_id,
                        row.repair_order_id,
                        row.ro_number,
                        list(row.lines),
                        row.attempts,
                    )
                )
        return claimed


def _send(
    database: Database, adapters: Callable[[Rooftop], DmsAdapter], row: _Claimed
) -> str | None:
    """Write one row; None when written, else what went wrong (as the advisor will read it)."""
    with database.reading() as session:
        rooftop = session.get_one(Rooftop, row.rooftop_id)
        session.expunge(rooftop)
    try:
        adapter = adapters(rooftop)
        if not isinstance(adapter, WritesLineAnswers) or not adapter.writes_answers:
            return f"the {rooftop.settings.dms.kind} adapter no longer writes answers back"
        answers = [LineAnswer(**line) for line in row.lines]  # type: ignore[arg-type]
        adapter.write_line_answers(row.ro_number, answers)
    except DmsError as failed:
        log.warning("RO %s: answer not written to the DMS: %s", row.ro_number, failed)
        return str(failed)
    return None


def _failed_attempt(session: Session, row: _Claimed, error: str, *, now: datetime) -> None:
    attempts = row.attempts + 1
    if attempts < MAX_ATTEMPTS:
        _mark(
            session,
            row.id,
            attempts=attempts,
            last_error=error[:2000],
            next_attempt_at=now + RETRY_AFTER[attempts - 1],
        )
        return
    _mark(session, row.id, attempts=attempts, last_error=error[:2000], state="failed")
    ro = session.get(RepairOrder, row.repair_order_id)
    described = ", ".join(
        f"{line['choice']} line {line['line_code']} ({line['op_code']})" for line in row.lines
    )
    open_task(
        session,
        rooftop_id=row.rooftop_id,
        kind="dms_write",
        summary=(
            f"RO {row.ro_number}: the customer's answer ({described}) could not be written to "
            f"the DMS after {attempts} tries: {error[:300]} — {ENTER_NOTE}"
        ),
        now=now,
        dedupe_key=f"dms_write:{row.id}",
        customer_id=ro.customer_id if ro else None,
        repair_order_id=row.repair_order_id,
        advisor_ref=ro.advisor_ref if ro else None,
    )


def _mark(session: Session, row_id: int, **values: object) -> None:
    session.execute(update(DmsWrite).where(DmsWrite.id == row_id).values(**values))
