"""Status texts for a whole DMS page at once: the same texts as one RO at a time, in a
number of statements that does not grow with the page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app.customer_page.models import CustomerLink
from app.db import Database
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder
from app.repair_orders.service import ApplyResult, apply_records
from app.wiring import change_hooks
from integrations.dms.rest import normalise_bridge_record
from tests.app.repair_orders.conftest import NOW, bridge_record, rooftop_named
from tests.support import load_sample_dealer


def _new_customers(start: int, count: int, *, status: str = "READY") -> list[dict[str, Any]]:
    """ROs of `count` people the group has never seen, each with a phone and a vehicle."""
    payloads = []
    for n in range(start, start + count):
        customer = dict(
            bridge_record()["customer"],
            id=f"NEW-{n}",
            last_name=f"Lee{n}",
            phones=[{"number": f"415-555-{1000 + n:04d}", "kind": "mobile"}],
        )
        vehicle = dict(bridge_record()["vehicle"], vin=f"JTMW1RFV5MD{n:06d}")
        payloads.append(
            bridge_record(f"N{n}", status=status, customer=customer, vehicle=vehicle, lines=[])
        )
    return payloads


def _store_page(database: Database, payloads: list[dict[str, Any]]) -> ApplyResult:
    with database.transaction() as session:
        rooftop = rooftop_named(session, "bayview-toyota")
        records = [normalise_bridge_record(payload) for payload in payloads]
        return apply_records(
            session, rooftop=rooftop, records=records, hooks=change_hooks(), at=NOW
        )


def _status_texts(session: Session) -> list[OutboundMessage]:
    return list(
        session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "status")
            .order_by(OutboundMessage.id)
        )
    )


def test_a_page_of_new_ros_texts_each_customer_once_with_a_first_text_notice(
    database: Database, session: Session
) -> None:
    load_sample_dealer(database)
    _store_page(database, _new_customers(0, 12))

    texts = _status_texts(session)
    ros = {ro.id: ro for ro in session.scalars(select(RepairOrder))}
    assert len(texts) == 12
    assert {text.dedupe_key for text in texts} == {f"ro:{i}:stage:ready_for_pickup" for i in ros}
    for text in texts:
        ro = ros[text.repair_order_id]  # type: ignore[index]
        assert text.state == "pending" and text.customer_id == ro.customer_id
        assert text.to_address == f"+1415555{1000 + int(ro.ro_number[1:]):04d}"
        assert text.body and "Bayview Toyota" in text.body and "STOP" in text.body  # first text
        assert text.template == "ready_for_pickup.en" and text.from_address
    links = session.scalars(select(CustomerLink)).all()
    assert len(links) == len(texts)
    assert {link.outbound_message_id for link in links} == {text.id for text in texts}
    by_id = {text.id: text for text in texts}
    for link in links:  # each link on its own text's RO and customer
        text = by_id[link.outbound_message_id]  # type: ignore[index]
        assert (link.repair_order_id, link.customer_id) == (text.repair_order_id, text.customer_id)

    session.rollback()  # end the read: SQLite has one writer at a time
    _store_page(database, _new_customers(0, 12))  # the same page again: nothing new
    assert len(_status_texts(session)) == 12


def test_a_newer_stage_supersedes_the_pages_pending_texts(
    database: Database, session: Session
) -> None:
    load_sample_dealer(database)
    _store_page(database, _new_customers(0, 3, status="OPEN"))
    assert len(_status_texts(session)) == 3
    session.rollback()
    moved = _new_customers(0, 3, status="OPEN")
    moved[0]["status"], moved[1]["status"] = "READY", "CLOSED"
    _store_page(database, moved)

    session.rollback()
    by_ro = {ro.ro_number: ro.id for ro in session.scalars(select(RepairOrder))}
    texts = {(t.repair_order_id, t.stage): t for t in _status_texts(session)}
    ready = texts[(by_ro["N0"], "ready_for_pickup")]
    assert ready.state == "pending"
    welcome = texts[(by_ro["N0"], "checked_in")]
    assert welcome.state == "superseded"
    assert welcome.suppressed_reason == f"superseded by ready_for_pickup (message {ready.id})"
    closed = texts[(by_ro["N1"], "checked_in")]
    assert (closed.state, closed.suppressed_reason) == ("superseded", "repair order closed")
    assert texts[(by_ro["N2"], "checked_in")].state == "pending"  # unchanged
    assert len(texts) == 4


def test_a_pages_status_texts_cost_the_same_statements_for_10_or_40_ros(
    database: Database, engine: Engine
) -> None:
    load_sample_dealer(database)
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    counts: dict[int, int] = {}
    event.listen(engine, "before_cursor_execute", record)
    try:
        for start, count in ((0, 10), (100, 40)):
            seen.clear()
            assert _store_page(database, _new_customers(start, count)).changed == count
            kept = seen
            if engine.dialect.name == "sqlite":  # its driver returns new ids a row at a time
                kept = [s for s in seen if not s.lstrip().upper().startswith("INSERT")]
            counts[count] = len(kept)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert counts[40] == counts[10], counts
