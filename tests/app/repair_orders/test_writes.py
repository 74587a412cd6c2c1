"""The set-based writes: what goes in a batch comes back from the database as it was sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import select

from app import bulk
from app.deps import Database
from app.repair_orders import writes
from app.repair_orders.models import RepairOrder, RoEvent
from tests.app.repair_orders.conftest import NOW, rooftop_named

PACIFIC = timezone(timedelta(hours=-8))


def _stored_ro(dealer: Database, number: str) -> int:
    with dealer.transaction() as session:
        rooftop = rooftop_named(session, "bayview-toyota")
        ro = RepairOrder(
            rooftop_id=rooftop.id,
            ro_number=number,
            raw_status="OPEN",
            stage="checked_in",
            opened_at=NOW,
            content_hash="c",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(ro)
        session.flush()
        return ro.id


def test_a_batch_document_is_arrays_in_column_order_with_offset_times() -> None:
    columns = {"id": writes.RO_COLUMNS["id"], "promised_at": writes.RO_COLUMNS["promised_at"]}
    rows = [{"promised_at": NOW.astimezone(PACIFIC), "id": 7, "ignored": "x"}]
    assert orjson.loads(bulk.document(rows, columns)) == [[7, "2026-11-22T10:00:00-08:00"]]
    one = {"id": writes.RO_COLUMNS["id"]}
    assert orjson.loads(bulk.document([{"id": 3}, {"id": 4}], one)) == [[3], [4]]


def test_a_naive_time_in_a_batch_is_refused_by_name() -> None:
    columns = {"id": writes.RO_COLUMNS["id"], "closed_at": writes.RO_COLUMNS["closed_at"]}
    with pytest.raises(orjson.JSONEncodeError) as raised:
        bulk.document([{"id": 1, "closed_at": datetime(2026, 11, 22, 18, 0)}], columns)
    assert "naive datetime" in str(raised.value.__cause__)


def test_update_by_id_sets_each_row_its_own_values_and_the_fixed_ones(dealer: Database) -> None:
    first, second = _stored_ro(dealer, "W1"), _stored_ro(dealer, "W2")
    later, latest = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    columns = {name: writes.RO_COLUMNS[name] for name in ("id", "stage", "promised_at")}
    with dealer.transaction() as session:
        bulk.update_by_id(
            session,
            writes.RO_TABLE,
            [
                {"id": first, "stage": "ready", "promised_at": later.astimezone(PACIFIC)},
                {"id": second, "stage": "in_repair", "promised_at": None},
            ],
            columns,
            {"updated_at": later, "missing_polls": 0},
        )
        # The same statement shape again, other values: nothing of the first call is kept.
        bulk.update_by_id(
            session, writes.RO_TABLE, [{"id": second, "stage": "waiting_parts"}],
            {name: writes.RO_COLUMNS[name] for name in ("id", "stage")}, {"updated_at": latest},
        )  # fmt: skip
    with dealer.sessions() as session:
        rows = {
            ro.id: (ro.stage, ro.promised_at, ro.updated_at)
            for ro in session.scalars(
                select(RepairOrder).where(RepairOrder.id.in_([first, second]))
            )
        }
    assert rows == {first: ("ready", later, later), second: ("waiting_parts", None, latest)}


def test_insert_events_keeps_details_and_times(dealer: Database) -> None:
    ro_id = _stored_ro(dealer, "W3")
    detail = {"line": "A", "note": "Bremsbeläge – 2×", "amounts": [1, 2.5, None]}
    with dealer.transaction() as session:
        writes.insert_events(
            session,
            [
                {"repair_order_id": ro_id, "kind": "stage", "from_stage": "checked_in",
                 "to_stage": "ready", "detail": detail, "at": NOW.astimezone(PACIFIC)},
                {"repair_order_id": ro_id, "kind": "promised", "from_stage": None,
                 "to_stage": None, "detail": {}, "at": NOW},
            ],
        )  # fmt: skip
    with dealer.sessions() as session:
        events = session.scalars(
            select(RoEvent).where(RoEvent.repair_order_id == ro_id).order_by(RoEvent.id)
        ).all()
    assert [(e.kind, e.from_stage, e.to_stage, e.detail, e.at) for e in events] == [
        ("stage", "checked_in", "ready", detail, NOW),
        ("promised", None, None, {}, NOW),
    ]
    assert all(event.at.tzinfo is UTC for event in events)


def test_insert_events_stores_equal_details_of_other_types_apart(dealer: Database) -> None:
    # {"n": 1} == {"n": True}, but they are different JSON; each detail written once is reused.
    ro_id = _stored_ro(dealer, "W4")
    details = [{"n": 1}, {"n": True}, {"n": 1.0}, {"n": 1}, {"n": [1]}, {"n": [1]}, None, {}]
    with dealer.transaction() as session:
        writes.insert_events(
            session,
            [
                {"repair_order_id": ro_id, "kind": "stage", "from_stage": None,
                 "to_stage": "ready", "detail": detail, "at": NOW}
                for detail in details
            ],
        )  # fmt: skip
    with dealer.sessions() as session:
        stored = session.scalars(
            select(RoEvent.detail).where(RoEvent.repair_order_id == ro_id).order_by(RoEvent.id)
        ).all()
    assert [(value, type(value["n"]) if value else None) for value in stored] == [
        (detail, type(detail["n"]) if detail else None) for detail in details
    ]
