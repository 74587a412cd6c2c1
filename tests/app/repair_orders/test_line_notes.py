"""The technician's note on a line travels from the DMS to ro_line.note and follows its edits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import Database
from app.repair_orders.models import RoLine
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.rest import RestBridgeAdapter
from tests.app.repair_orders.conftest import bridge_record
from tests.app.repair_orders.test_poller import poll


def _noted(note: str | None, updated_at: str) -> dict[str, Any]:
    record = bridge_record("R7", updated_at=updated_at)
    if note is not None:
        record["lines"][1]["note"] = note
    return record


def _notes(session: Session) -> dict[str, str | None]:
    notes = {
        op_code: note for op_code, note in session.execute(select(RoLine.op_code, RoLine.note))
    }
    session.rollback()  # SQLite: end the read so the next poll can write
    return notes


def test_a_dms_note_is_stored_changed_and_cleared_over_http(
    dealer: Database, session: Session
) -> None:
    fake = RestBridgeFake()
    with FakeServer(fake.app) as server:
        adapter = RestBridgeAdapter(
            base_url=server.url, token="bridge-token", rooftop_slug="bayview-toyota"
        )
        fake.put(_noted("Pads at 3 mm", "2026-11-22T17:40:00Z"))
        first = poll(dealer, adapter)
        stored = _notes(session)
        fake.put(_noted("Pads at 2 mm, rotors scored", "2026-11-22T17:50:00Z"))
        poll(dealer, adapter)
        edited = _notes(session)
        fake.put(_noted(None, "2026-11-22T18:00:00Z"))
        poll(dealer, adapter)
        cleared = _notes(session)
        adapter.close()
    assert first.outcome == "ok"
    assert stored == {"OILCHG": None, "BRKPAD": "Pads at 3 mm"}
    assert edited["BRKPAD"] == "Pads at 2 mm, rotors scored"
    assert cleared["BRKPAD"] is None
