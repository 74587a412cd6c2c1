"""Customers' answers written back into Dealertrack, over HTTP to its fake, by the worker.

RO 5001 is polled in with brakes and wipers pending; the customer approves the brakes and
declines the wipers on the page; the worker writes both with UpdateRepairOrderLines in the
dealer's codes, and the next poll reads them back. A DMS that keeps refusing costs a few
retries, then the advisor gets a task with the DMS's words. A rooftop without the dealer's
codes writes nothing and the task says to enter the answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import select

from app.conversations.models import Task
from app.customer_page.answers import record
from app.customer_page.links import mint_link, resolve
from app.customers.models import Customer
from app.deps import Database
from app.repair_orders.models import DmsWrite, RepairOrder, RoLine
from app.repair_orders.write_back import ENTER_NOTE, MAX_ATTEMPTS, RETRY_AFTER, WRITE_NOTE
from app.worker import Worker
from tests.app.messaging.conftest import (  # noqa: F401  (fixtures)
    Clock,
    app_port,
    app_settings,
    gateway,
    sandbox,
    served_app,
)
from tests.app.repair_orders.test_vendor_end_to_end import world_worker
from tests.integrations.dms.vendor_worlds import DealertrackWorld, Line


class WritingWorld(DealertrackWorld):
    """A Dealertrack dealer whose codes for a line's answer Pitwall was given."""

    line_codes: ClassVar[dict[str, str]] = {
        "approved": "A",
        "declined": "D",
        "completed": "C",
        "pending": "R",
    }
    writes = True

    def dms_table(self) -> str:
        table = super().dms_table()
        if self.writes:
            table += 'write_back_codes = { approved = "A", declined = "D" }\n'
        return table


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[WritingWorld]:
    world = WritingWorld()
    world.writes = getattr(request, "param", True)
    try:
        yield world
    finally:
        world.close_server()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def worker(
    world: WritingWorld,
    database: Database,
    tmp_path: Path,
    clock: Clock,
    request: pytest.FixtureRequest,
) -> Iterator[Worker]:
    with world_worker(world, database, tmp_path, request, clock) as worker:
        yield worker


def answer_on_the_page(database: Database, clock: Clock, number: str) -> None:
    """The customer approves the brakes and declines the wipers on the page."""
    with database.transaction() as session:
        ro = session.scalars(select(RepairOrder).where(RepairOrder.ro_number == number)).one()
        customer = session.get_one(Customer, ro.customer_id)
        _link, url = mint_link(session, ro=ro, customer=customer, purpose="status", now=clock())
        lines = {line.op_code: line.id for line in ro.lines}
        resolved = resolve(session, url.rsplit("/", 1)[1], now=clock())
        done = record(
            session,
            resolved=resolved,
            choices={lines["BRKPAD"]: "approve", lines["WIPERS"]: "decline"},
            language="en",
            ip=None,
            user_agent=None,
            now=clock(),
        )
        assert done.answer is not None


def open_ro(world: WritingWorld, worker: Worker, number: str) -> None:
    world.open(
        number,
        phone="4155550142",
        vin="JTMW1RFV5MD012345",
        lines=[
            Line("1", "OILCHG", "89.95", "approved"),
            Line("2", "BRKPAD", "412.00", "pending"),
            Line("3", "WIPERS", "42.00", "pending"),
        ],
    )
    (result,) = worker.poll_every_rooftop()
    assert result.outcome == "ok", result.error


def line_statuses(database: Database, number: str) -> dict[str, str]:
    with database.sessions() as session:
        rows = session.execute(
            select(RoLine.op_code, RoLine.status)
            .join(RepairOrder, RepairOrder.id == RoLine.repair_order_id)
            .where(RepairOrder.ro_number == number)
        ).all()
    return {op_code: status for op_code, status in rows}


def tasks(database: Database) -> list[str]:
    with database.sessions() as session:
        return list(session.scalars(select(Task.summary).order_by(Task.id)))


@pytest.mark.parametrize("world", [True, False], ids=["codes given", "no codes"], indirect=True)
def test_page_answers_reach_the_dms_and_come_back_on_the_next_poll(
    world: WritingWorld, worker: Worker, database: Database, clock: Clock
) -> None:
    open_ro(world, worker, "5001")
    answer_on_the_page(database, clock, "5001")
    (task,) = tasks(database)
    written = worker.dms_writes()
    (result,) = worker.poll_every_rooftop()
    assert result.outcome == "ok"
    with database.sessions() as session:
        rows = session.scalars(select(DmsWrite)).all()
    if not world.writes:
        assert task.endswith(ENTER_NOTE) and written == 0 and rows == []
        assert world.fake.updates == []
        assert line_statuses(database, "5001")["BRKPAD"] == "pending"
        return
    assert task.endswith(WRITE_NOTE) and written == 1
    ((number, items),) = world.fake.updates
    assert number == "5001"
    assert [(i["ServiceLineNumber"], i["LineStatus"]) for i in items] == [("2", "A"), ("3", "D")]
    (row,) = rows
    assert (row.state, row.attempts, row.source) == ("written", 0, "page")
    assert line_statuses(database, "5001") == {
        "OILCHG": "approved",
        "BRKPAD": "approved",
        "WIPERS": "declined",
    }


def test_a_dms_that_keeps_refusing_is_retried_then_handed_to_the_advisor(
    world: WritingWorld, worker: Worker, database: Database, clock: Clock
) -> None:
    open_ro(world, worker, "5002")
    answer_on_the_page(database, clock, "5002")
    world.fake.open_orders.pop("5002")  # gone from the open list: OpenTrack says so
    for wait in (*RETRY_AFTER, None):
        assert worker.dms_writes() == 0
        assert worker.dms_writes() == 0  # not due again until its wait is over
        if wait is not None:
            clock.advance(seconds=wait.total_seconds())
    with database.sessions() as session:
        row = session.scalars(select(DmsWrite)).one()
    assert (row.state, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert row.last_error and "RO 5002 is not open" in row.last_error
    first, last = tasks(database)
    assert first.endswith(WRITE_NOTE)
    assert "could not be written to the DMS after 5 tries" in last
    assert "RO 5002 is not open" in last and last.endswith(ENTER_NOTE)
    assert worker.dms_writes() == 0 and len(tasks(database)) == 2
