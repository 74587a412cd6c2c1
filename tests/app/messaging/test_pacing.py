"""Send slots per sender are shared by every worker: together they keep the rooftop's rate."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.deps import Database
from app.messaging.models import SenderPace
from app.messaging.pacing import reserve_batch_slots
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Shop, sent_to

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def reserve_slots(
    session: Session, *, sender: str, count: int, rate: float, now: datetime
) -> list[datetime]:
    """One sender's slots, reserved as the dispatcher reserves a batch's."""
    return reserve_batch_slots(session, wanted={sender: (count, rate)}, now=now)[sender]


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


def test_a_batch_reserves_every_sender_at_its_own_rate_in_one_go(database: Database) -> None:
    with database.transaction() as session:
        reserve_slots(session, sender="+14155550100", count=2, rate=1.0, now=NOW)  # busy
    with database.transaction() as session:
        slots = reserve_batch_slots(
            session, wanted={"+14155550100": (2, 1.0), "+14155550200": (3, 4.0)}, now=NOW
        )
    second, quarter = timedelta(seconds=1), timedelta(seconds=0.25)
    assert slots == {
        "+14155550100": [NOW + 2 * second, NOW + 3 * second],  # after its earlier batch
        "+14155550200": [NOW, NOW + quarter, NOW + 2 * quarter],  # idle: from now
    }


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


def test_the_dispatcher_sends_on_slots_shared_through_the_database(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(send_rate_per_second=20)
    for n in range(10):
        customer, _ = shop.customer(f"+141555501{20 + n}")
        shop.repair_order(customer, number=f"R{n}")
    before = utcnow()
    assert dispatch().sent == 10
    after = utcnow()
    with shop.database.sessions() as session:
        pace = session.get(SenderPace, "+14155550100")
    assert pace is not None
    # Ten slots at 20/s were reserved from the sender's row: the next free one is 0.5 s on.
    assert before + timedelta(seconds=0.5) <= pace.next_slot_at <= after + timedelta(seconds=0.5)
    assert len(sent_to(sandbox)) == 10
