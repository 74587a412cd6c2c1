"""Send slots per sender are shared by every worker: together they keep the rooftop's rate."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from app.deps import Database
from app.messaging.pacing import reserve_slots

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def test_consecutive_batches_continue_where_the_last_one_ended(database: Database) -> None:
    with database.transaction() as session:
        first = reserve_slots(session, sender="+14155550100", count=3, rate=2.0, now=NOW)
    with database.transaction() as session:
        second = reserve_slots(session, sender="+14155550100", count=2, rate=2.0, now=NOW)
    half = timedelta(seconds=0.5)
    assert first == [NOW, NOW + half, NOW + 2 * half]
    assert second == [NOW + 3 * half, NOW + 4 * half]


def test_an_idle_sender_starts_now_and_senders_are_independent(database: Database) -> None:
    with database.transaction() as session:
        reserve_slots(session, sender="+14155550100", count=5, rate=1.0, now=NOW)
        other = reserve_slots(session, sender="+14155550200", count=1, rate=1.0, now=NOW)
    later = NOW + timedelta(minutes=10)
    with database.transaction() as session:
        again = reserve_slots(session, sender="+14155550100", count=1, rate=1.0, now=later)
    assert other == [NOW] and again == [later]


def test_workers_reserving_at_once_never_share_a_slot(database: Database) -> None:
    slots: list[datetime] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            with database.transaction() as session:
                mine = reserve_slots(session, sender="+14155550100", count=4, rate=1.0, now=NOW)
            with lock:
                slots.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slots) == 80 and len(set(slots)) == 80
    assert sorted(slots) == [NOW + timedelta(seconds=i) for i in range(80)]
