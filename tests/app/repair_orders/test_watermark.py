"""A page's watermark moves the cursor once the page is committed, even with no records:
vendors whose records carry no modification time (Fortellis) or a quiet shop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from app.deps import Database
from app.repair_orders.models import DmsPollState
from integrations.dms.base import DmsPage, RawRecord
from tests.app.repair_orders.conftest import ScriptedDms, bridge_record
from tests.app.repair_orders.test_poller import ids, poll

WINDOW_END = datetime(2026, 11, 22, 17, 55, tzinfo=UTC)


class WindowDms(ScriptedDms):
    """Serves its pages, the last one marked as read up to WINDOW_END."""

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        self.calls.append(since)
        for n, records in enumerate(self.pages):
            last = n == len(self.pages) - 1
            yield DmsPage(
                records=[RawRecord(payload=r, ro_number=r.get("ro_number")) for r in records],
                watermark=WINDOW_END if last else None,
            )


def cursor(database: Database) -> datetime | None:
    with database.sessions() as session:
        state = session.get(DmsPollState, ids(database)["bayview-toyota"])
        return None if state is None else state.cursor_at


def test_an_empty_window_still_moves_the_cursor_to_its_end(
    dealer: Database,
) -> None:
    dms = WindowDms(pages=[[]])
    assert poll(dealer, dms).outcome == "ok"
    assert cursor(dealer) == WINDOW_END
    poll(dealer, dms)
    assert dms.calls[1] == WINDOW_END - timedelta(minutes=5)


def test_records_without_updated_at_move_it_to_the_watermark_not_before(
    dealer: Database,
) -> None:
    record = bridge_record("R1", updated_at=None)
    dms = WindowDms(pages=[[record], []])
    assert poll(dealer, dms).outcome == "ok"
    assert cursor(dealer) == WINDOW_END


def test_a_later_updated_at_than_the_watermark_wins(dealer: Database) -> None:
    later = bridge_record("R1", updated_at="2026-11-22T18:30:00Z")
    assert poll(dealer, WindowDms(pages=[[later]])).outcome == "ok"
    assert cursor(dealer) == datetime(2026, 11, 22, 18, 30, tzinfo=UTC)
