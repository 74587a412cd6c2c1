"""Storing DMS records: zero writes when unchanged, events and hooks when not."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from app.customers.models import Consent
from app.deps import Database
from app.repair_orders.changes import RepairOrderChange
from app.repair_orders.hashing import customer_hash, lines_hash, record_digests, vehicle_hash
from app.repair_orders.models import RepairOrder, RoEvent, UnmappedStatus
from app.repair_orders.page import KNOWN_COLUMNS
from app.repair_orders.service import (
    ApplyResult,
    KnownRo,
    apply_record,
    apply_records,
    content_hash,
)
from app.repair_orders.writes import RO_COLUMNS
from integrations.dms.rest import normalise_bridge_record
from integrations.dms.simulator import SimulatorAdapter
from tests.app.repair_orders.conftest import NOW, WriteCounter, bridge_record, rooftop_named


class Hooks(list[RepairOrderChange]):
    def __call__(self, session: Session, change: RepairOrderChange) -> None:
        self.append(change)


def store(
    database: Database, payload: dict, hooks: Hooks | None = None, slug: str = "bayview-toyota"
):
    with database.transaction() as session:
        rooftop = rooftop_named(session, slug)
        record = normalise_bridge_record(payload)
        return apply_record(
            session,
            rooftop=rooftop,
            record=record,
            hooks=[hooks if hooks is not None else Hooks()],
            at=NOW,
        )


def test_content_hash_matches_the_port() -> None:
    sim = SimulatorAdapter(seed=3, ro_count=30, start_offset_minutes=400)
    for payload in sim.records_at(sim.now()):
        record = normalise_bridge_record(payload)
        assert content_hash(record) == record.content_hash()


def test_record_digests_are_the_parts_hashed_one_by_one() -> None:
    sim = SimulatorAdapter(seed=5, ro_count=20, start_offset_minutes=400)
    records = [normalise_bridge_record(payload) for payload in sim.records_at(sim.now())]
    records.append(normalise_bridge_record(bridge_record("BARE", customer=None, vehicle=None)))
    odd = bridge_record("ODD", lines=[], advisor=None, promised_at=None)
    odd["customer"] = {"id": "C9", "phones": [], "language": None}
    odd["vehicle"] = {"vin": None, "year": None, "make": "Kia", "model": None, "mileage": None}
    records.append(normalise_bridge_record(odd))
    noted = bridge_record("NOTED")
    noted["lines"][0]["note"] = "Seeping at the pan – é"
    records.append(normalise_bridge_record(noted))
    for record in records:
        digests = record_digests(record)
        assert digests.content == content_hash(record)
        assert digests.customer == customer_hash(record.customer)
        assert digests.lines == lines_hash(record.lines)
        assert digests.vehicle == vehicle_hash(record.vehicle)
    assert len({record_digests(record).content for record in records}) == len(records)
    bare = record_digests(records[-3])
    assert (bare.customer, bare.vehicle) == (None, None)


def test_the_columns_a_page_sets_only_when_moved_are_known_for_every_stored_ro() -> None:
    # A column the lookup does not read could never be told unchanged: it is always set.
    assert set(KNOWN_COLUMNS) <= set(KnownRo._fields) & set(RO_COLUMNS)


def test_an_unchanged_ro_costs_zero_writes(dealer: Database, engine) -> None:
    assert store(dealer, bridge_record()) is not None
    moved = bridge_record(updated_at="2026-11-22T17:45:00Z")  # only updated_at differs
    with WriteCounter(engine) as writes:
        assert store(dealer, moved) is None
        assert store(dealer, bridge_record()) is None
    assert writes.tables == []


def test_new_ro_stage_change_and_promise_move_write_events_and_call_hooks(
    dealer: Database, session: Session
) -> None:
    hooks = Hooks()
    first = store(dealer, bridge_record(status="OPEN"), hooks)
    assert first is not None and first.is_new and first.ro.stage == "checked_in"
    assert len(first.line_changes) == 2
    second = store(
        dealer,
        bridge_record(
            status="READY",
            promised_at="2026-11-22T23:00:00Z",
            lines=[
                {
                    "line": "A",
                    "op_code": "OILCHG",
                    "description": "Oil and filter",
                    "status": "completed",
                    "amount": "89.95",
                },
            ],
        ),
        hooks,
    )
    assert second is not None and second.stage_changed and second.promised_changed
    assert second.previous_stage == "checked_in" and second.ro.stage == "ready_for_pickup"
    assert [(c.line.line_code, c.previous_status) for c in second.line_changes] == [
        ("A", "approved")
    ]
    assert [c.ro.ro_number for c in hooks] == ["R1001", "R1001"]
    events = session.scalars(select(RoEvent).order_by(RoEvent.id)).all()
    assert [(e.kind, e.from_stage, e.to_stage) for e in events] == [
        ("stage", None, "checked_in"),
        ("stage", "checked_in", "ready_for_pickup"),
        ("promised", "ready_for_pickup", "ready_for_pickup"),
    ]
    ro = session.scalars(select(RepairOrder)).one()
    # The line the DMS stopped listing is kept: declined-work history hangs on it.
    assert sorted((line.line_code, line.status) for line in ro.lines) == [
        ("A", "completed"),
        ("B", "declined"),
    ]
    assert ro.lines[0].amount_cents == 8995


def test_unmapped_status_keeps_the_stage_and_is_reported(
    dealer: Database, session: Session
) -> None:
    store(dealer, bridge_record(status="WIP"))
    change = store(dealer, bridge_record(status="HOLD-PARTS"))
    assert change is not None and not change.stage_changed
    assert change.ro.stage == "in_repair" and change.ro.raw_status == "HOLD-PARTS"
    store(dealer, bridge_record("R2002", status="HOLD-PARTS"))
    new_ro = session.scalars(select(RepairOrder).where(RepairOrder.ro_number == "R2002")).one()
    assert new_ro.stage == "checked_in"  # a new RO never starts at a guessed later stage
    row = session.scalars(select(UnmappedStatus)).one()
    assert (row.raw_status, row.count, row.example_ro_number) == ("HOLD-PARTS", 2, "R2002")


def test_dms_consent_reaches_the_ledger_only_when_it_changes(
    dealer: Database, session: Session
) -> None:
    store(dealer, bridge_record())
    rows = session.scalars(select(Consent).order_by(Consent.id)).all()
    assert [(r.purpose, r.action, r.source) for r in rows] == [
        ("status", "granted", "dms:bayview-toyota"),
        ("marketing", "revoked", "dms:bayview-toyota"),
    ]
    session.rollback()  # end the read: SQLite has one writer at a time
    customer = dict(bridge_record()["customer"], marketing_consent=True)
    store(dealer, bridge_record(status="WIP", customer=customer))
    store(dealer, bridge_record(status="QC", customer=customer))
    rows = session.scalars(select(Consent).order_by(Consent.id)).all()
    assert [(r.purpose, r.action) for r in rows][2:] == [("marketing", "granted")]


def test_same_customer_across_rooftops_is_one_record(dealer: Database, session: Session) -> None:
    store(dealer, bridge_record("T1"), slug="bayview-toyota")
    other = dict(bridge_record()["customer"], id="FORD-77", phones=[{"number": "415.555.0142"}])
    store(dealer, bridge_record("F1", customer=other), slug="bayview-ford")
    ros = session.scalars(select(RepairOrder).order_by(RepairOrder.id)).all()
    assert ros[0].customer_id == ros[1].customer_id
    assert ros[0].vehicle_id == ros[1].vehicle_id  # same VIN, same group


def test_promised_time_in_another_offset_is_the_same_instant(dealer: Database) -> None:
    store(dealer, bridge_record())
    same = bridge_record(promised_at="2026-11-22T14:00:00-08:00")
    assert store(dealer, same) is None
    later = NOW + timedelta(hours=5)
    assert store(dealer, bridge_record(promised_at=later.isoformat())) is not None


def _store_page(database: Database, payloads: list[dict]) -> ApplyResult:
    with database.transaction() as session:
        rooftop = rooftop_named(session, "bayview-toyota")
        records = [normalise_bridge_record(payload) for payload in payloads]
        return apply_records(session, rooftop=rooftop, records=records, hooks=[], at=NOW)


def test_a_page_without_hooks_writes_only_what_moved(
    dealer: Database, session: Session, engine
) -> None:
    other_vin = {"vin": "1FTFW1E50NFA00001", "year": 2022, "make": "Ford", "model": "F-150"}
    _store_page(
        dealer,
        [
            bridge_record("R1", status="OPEN"),
            bridge_record("R2", status="OPEN", vehicle=other_vin),
            bridge_record("R3", status="OPEN", vehicle=None),
        ],
    )
    with WriteCounter(engine) as writes:
        result = _store_page(dealer, [bridge_record("R1", status="WIP")])
    # A status-only change: the RO and its event, never its lines, vehicle or customer;
    # and on the RO only the columns that can have moved.
    assert sorted(writes.excluding("ro_event")) == ["repair_order"]
    assert result.changed == 1 and result.changes == []  # no hooks: no ORM ROs built
    [update] = [
        statement.split(" WHERE ")[0].split(" FROM ")[0]  # its SET clause
        for statement, table in zip(writes.statements, writes.tables, strict=True)
        if table == "repair_order"
    ]
    assert "stage" in update and "raw_status" in update
    for unmoved in ("customer_id", "customer_hash", "vehicle_id", "lines_hash", "missing_polls"):
        assert unmoved not in update, update

    added_line = {"line": "C", "op_code": "WIPER", "description": "Wipers", "status": "approved"}
    result = _store_page(
        dealer,
        [
            # R1 now drives R2's vehicle (a VIN the group knows) and lists a new line.
            bridge_record(
                "R1",
                status="WIP",
                vehicle=other_vin,
                lines=[*bridge_record()["lines"], dict(added_line, amount="24.50")],
            ),
            bridge_record("R3", status="WIP", vehicle={**other_vin, "vin": "BADVIN"}),
            bridge_record("R4", status="OPEN", vehicle={**other_vin, "vin": "5YJ3E1EA7KF000004"}),
            bridge_record("R5", status="OPEN", vehicle={**other_vin, "vin": "5YJ3E1EA7KF000004"}),
        ],
    )
    assert result.changed == 4
    ros = {ro.ro_number: ro for ro in session.scalars(select(RepairOrder))}
    assert ros["R1"].vehicle_id == ros["R2"].vehicle_id
    assert ros["R4"].vehicle_id == ros["R5"].vehicle_id  # one new vehicle for one new VIN
    assert ros["R3"].vehicle is not None and ros["R3"].vehicle.vin is None  # a VIN-less own one
    assert ros["R3"].vehicle_id not in (ros["R1"].vehicle_id, ros["R4"].vehicle_id)
    lines = {line.line_code: line for line in ros["R1"].lines}
    assert sorted(lines) == ["A", "B", "C"]
    assert (lines["C"].amount_cents, lines["C"].customer_approved_at) == (2450, NOW)
    assert ros["R1"].customer_id == ros["R4"].customer_id  # the same DMS customer
    events = session.scalars(select(RoEvent).where(RoEvent.kind == "stage")).all()
    assert len(events) == 3 + 1 + 1 + 2  # three new, R1's move, R3's move, two new
    assert events[3].detail == {"raw_status": "WIP"} and events[3].at == NOW

    session.rollback()  # end the read: SQLite has one writer at a time
    _store_page(dealer, [bridge_record("R2", status="OPEN", vehicle={**other_vin, "year": 2023})])
    assert session.get(RepairOrder, ros["R1"].id).vehicle.year == 2023  # the shared vehicle


def _new_customers(start: int, count: int) -> list[dict]:
    """ROs of `count` people the group has never seen, each with a vehicle and consent."""
    payloads = []
    for n in range(start, start + count):
        customer = dict(
            bridge_record()["customer"],
            id=f"NEW-{n}",
            last_name=f"Lee{n}",
            phones=[{"number": f"415-555-{1000 + n:04d}", "kind": "mobile"}],
        )
        vehicle = dict(bridge_record()["vehicle"], vin=f"JTMW1RFV5MD{n:06d}")
        payloads.append(bridge_record(f"N{n}", customer=customer, vehicle=vehicle))
    return payloads


def test_a_page_of_new_customers_is_matched_set_based(
    dealer: Database, session: Session, engine
) -> None:
    # Each customer alone once cost ten statements; a page's count no longer grows with it
    # (on SQLite, its reads and updates).
    statements: dict[int, int] = {}
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for start, count in ((0, 10), (100, 40)):
            seen.clear()
            result = _store_page(dealer, _new_customers(start, count))
            assert result.changed == count
            kept = seen
            if engine.dialect.name == "sqlite":  # its driver returns new ids a row at a time
                kept = [s for s in seen if not s.lstrip().upper().startswith("INSERT")]
            statements[count] = len(kept)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements[40] == statements[10], statements

    ros = session.scalars(select(RepairOrder).where(RepairOrder.ro_number.like("N%"))).all()
    assert len({ro.customer_id for ro in ros}) == 50 and None not in {r.customer_id for r in ros}
    consents = session.scalars(select(Consent).where(Consent.customer_id.is_not(None))).all()
    assert len(consents) == 100  # status granted + marketing revoked, each with its customer
