"""An approval by text on a rooftop whose DMS takes answers back is queued for it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.models import Task
from app.repair_orders.models import DmsWrite
from app.repair_orders.write_back import WRITE_NOTE
from tests.app.conversations.conftest import (
    Twilio,
    customer_on,
    repair_order,
    reply_of,
    rooftop,
    sent_before,
)

SAM = "+14155550142"


def test_a_yes_by_text_is_queued_for_the_dms_and_the_task_says_so(
    twilio: Twilio, session: Session
) -> None:
    toyota = rooftop(session)
    toyota.config = {
        **toyota.config,
        "dms": {"kind": "dealertrack", "write_back_codes": {"approved": "A", "declined": "D"}},
    }
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    order = repair_order(
        session,
        sam,
        ro_number="R6",
        stage="awaiting_approval",
        lines=[("BRKPAD", "Front brake pads", 41200, "pending")],
    )
    sent_before(session, order)
    session.commit()
    reply_of(twilio.text("Yes please", from_=SAM))
    session.rollback()  # SQLite: end the read before the webhook writes
    reply_of(twilio.text("YES", from_=SAM))
    queued = session.scalars(select(DmsWrite)).one()
    assert (queued.ro_number, queued.source, queued.state) == ("R6", "sms", "pending")
    assert queued.lines == [
        {"line_code": "A", "op_code": "BRKPAD", "amount_cents": 41200, "choice": "approved"}
    ]
    task = session.scalars(select(Task).where(Task.kind == "approval")).one()
    assert task.summary.endswith(WRITE_NOTE)
