"""Round trips per inbound text: the webhook's SQL statements are counted, not timed.

Every inbound text is a request Twilio waits on; at a group's volume each statement is
a round trip to PostgreSQL. These bounds keep the common paths from regressing (the
count is deterministic; timing on shared machines is not).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from app.config import load_dealer_config
from app.conversations.models import InboundMessage, Task
from app.dealers import service as dealers
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from tests.app.conversations.conftest import (
    OPEN_HOURS,
    Twilio,
    customer_on,
    message_xml,
    new_sid,
    repair_order,
    reply_of,
)
from tests.support import SAMPLE_CONFIG

SAM = "+14155550142"
OTHER = "+14155550143"


class Statements:
    """The SQL statements the engine sent while counting was on."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.on = False

    def __call__(self, _conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if self.on:
            self.seen.append(statement)

    def during(self, action):  # type: ignore[no-untyped-def]
        self.seen.clear()
        self.on = True
        try:
            result = action()
        finally:
            self.on = False
        return result

    def report(self) -> str:
        return "\n".join(f"{i + 1}: {s.split()[0]} {s[:160]!r}" for i, s in enumerate(self.seen))

    @property
    def count(self) -> int:
        # Statements, as PostgreSQL counts them: SQLite's BEGIN IMMEDIATE is SQL here but
        # psycopg's BEGIN, the pool's pre-ping and the COMMIT never pass this hook.
        return sum(1 for s in self.seen if not s.startswith("BEGIN"))


@pytest.fixture
def statements(engine: Engine) -> Iterator[Statements]:
    counter = Statements()
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine, "before_cursor_execute", counter)


def _texts(twilio: Twilio, statements: Statements, body: str) -> int:
    # The first text warms up caches that a running server has already warm.
    message_xml(twilio.text(body, from_=SAM))
    response = statements.during(lambda: twilio.text(body, from_=SAM))
    message_xml(response)
    return statements.count


def test_status_question_with_one_open_order(
    twilio: Twilio, session: Session, statements: Statements
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(
        session, sam, ro_number="R1", stage="in_repair", promised_at=OPEN_HOURS + timedelta(hours=6)
    )
    session.commit()
    count = _texts(twilio, statements, "Is my car ready?")
    # The phone with its customers, the open order with its vehicle and lines, and the
    # row with its answer (the rooftop comes from the process's cache).
    assert count <= 3, statements.report()


def test_free_text_joining_an_open_conversation(
    twilio: Twilio, session: Session, statements: Statements, engine: Engine
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R1", stage="in_repair")
    session.commit()
    count = _texts(twilio, statements, "Can you also check the wipers?")
    # ... and the open conversation task it joins: on PostgreSQL in the row's own statement.
    assert count <= (3 if engine.dialect.name == "postgresql" else 4), statements.report()


def test_free_text_opening_a_conversation(
    twilio: Twilio, session: Session, statements: Statements, engine: Engine
) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    customer_on(session, OTHER, first="Ann", last="Bell")
    session.commit()
    message_xml(twilio.text("Can you also check the wipers?", from_=OTHER))  # warms up
    response = statements.during(lambda: twilio.text("Can you check the wipers?", from_=SAM))
    assert reply_of(response) is not None
    # The phone, and the row with its answer and the task it opens: one statement on
    # PostgreSQL (the row's INSERT), the task's own INSERT after it elsewhere.
    assert statements.count <= (2 if engine.dialect.name == "postgresql" else 3)
    task = session.scalars(select(Task).where(Task.summary.startswith("Sam Lee"))).one()
    row = session.scalars(
        select(InboundMessage).where(InboundMessage.id == task.inbound_message_id)
    )
    assert row.one().from_address == SAM and task.state == "open" and task.kind == "needs_reply"


def test_a_retried_text_writes_neither_its_row_nor_its_task(
    twilio: Twilio, session: Session
) -> None:
    """The conversation's write goes with the row: a retry opens no second task, and
    changes no summary (its whole attempt rolls back)."""
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    opening, joining = new_sid(), new_sid()
    texts = [
        (opening, "Do you have a loaner?"),
        (opening, "Do you have a loaner?"),
        (joining, "also the wipers"),
        (joining, "also the wipers, again"),  # a retry's words would change nothing either
    ]
    for sid, body in texts:
        message_xml(twilio.text(body, from_=SAM, sid=sid))
    session.expire_all()
    task = session.scalars(select(Task)).one()
    assert task.summary == "Sam Lee: also the wipers"
    rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
    assert [row.provider_sid for row in rows] == [opening, joining]
    assert task.inbound_message_id == rows[0].id


def test_stop(twilio: Twilio, session: Session, statements: Statements, engine: Engine) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    count = _texts(twilio, statements, "STOP")
    # No order, no task: the phone, the row with its answer and the three ledger rows: Twilio's
    # block, then the two purposes (those two are one statement on PostgreSQL; SQLite
    # inserts rows it wants ids of one at a time).
    ledger = 2 if engine.dialect.name == "postgresql" else 3
    assert count <= 2 + ledger, statements.report()


def test_kept_rooftop_is_at_most_the_cache_time_old(
    twilio: Twilio, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process deactivating the rooftop is seen once the kept copy expires."""
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    assert message_xml(twilio.text("hello", from_=SAM)).count("<Message>") == 1
    session.execute(update(Rooftop).values(active=False))
    session.commit()
    monkeypatch.setattr(dealers, "ROOFTOP_CACHE_SECONDS", 0.0)
    message_xml(twilio.text("hello again", from_=SAM))
    session.expire_all()
    latest = session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
    assert latest is not None and latest.rooftop_id is None  # no rooftop owns the number now


def test_loading_a_config_in_this_process_forgets_kept_rooftops(
    twilio: Twilio, database: Database, session: Session
) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    message_xml(twilio.text("hello", from_=SAM))
    config = load_dealer_config(SAMPLE_CONFIG)
    config = config.model_copy(
        update={"rooftop": [r for r in config.rooftop if r.slug != "bayview-toyota"]}
    )
    with database.transaction() as arranging:
        assert apply_dealer_config(arranging, config=config, source="test").deactivated
    message_xml(twilio.text("hello again", from_=SAM))
    latest = session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
    assert latest is not None and latest.rooftop_id is None
