"""Send slots per sender are shared by every worker: together they keep the rooftop's rate."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.customers.models import Phone
from app.db import utcnow
from app.deps import Database
from app.messaging import dispatcher
from app.messaging.dispatcher import DispatchResult, dispatch_due
from app.messaging.models import OutboundMessage, SenderPace
from app.messaging.pacing import reserve_batch_slots
from integrations.twilio.base import OutgoingMessage, SentMessage
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


class _Instant:
    """A gateway that takes every text at once."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: OutgoingMessage) -> SentMessage:
        self.sent.append(message.to)
        return SentMessage(sid=f"SM{len(self.sent):032d}", status="queued")

    def find_existing(self, **_: Any) -> None:
        return None

    def check_credentials(self) -> None:
        return None


def _due_texts(shop: Shop, count: int, *, rate: float) -> None:
    """`count` status texts to as many phones, due now from the rooftop's number, which
    sends `rate` texts a second."""
    shop.configure(send_rate_per_second=rate, quiet_hours="off")
    now = utcnow()
    with shop.database.transaction() as session:
        phones = [
            Phone(group_id=shop.group_id, e164=f"+1415555{n:04d}", as_typed="x", kind="mobile")
            for n in range(count)
        ]
        session.add_all(phones)
        session.flush()
        session.add_all(
            OutboundMessage(
                rooftop_id=shop.rooftop_id,
                phone_id=phone.id,
                kind="status",
                purpose="status",
                dedupe_key=f"due:{phone.id}",
                channel="sms",
                to_address=phone.e164,
                from_address="+14155550100",
                body=f"text {n}",
                not_before=now - timedelta(seconds=1),
            )
            for n, phone in enumerate(phones)
        )


def _claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The limit of every claim the dispatcher makes from now on."""
    limits: list[int] = []
    real = dispatcher.claim_and_decide

    def claim(*args: Any, limit: int, **kwargs: Any) -> Any:
        limits.append(limit)
        return real(*args, limit=limit, **kwargs)

    monkeypatch.setattr(dispatcher, "claim_and_decide", claim)
    return limits


def _dispatch(shop: Shop, gateway: _Instant) -> DispatchResult:
    """A run as the worker's: batches of 100, claimed ahead while the texts go."""
    return dispatch_due(
        shop.database,
        gateway=gateway,
        public_url="http://x",
        worker_id="t",
        batch_size=100,
        concurrency=4,
        max_batches=10,
    )


def test_claims_grow_while_pacing_holds_nothing_back(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a short code's rate a claim after the first takes two batches (fewer claims a
    text, each of which the send threads wait on at 0 ms latency)."""
    _due_texts(shop, 350, rate=1000)
    limits, gateway = _claims(monkeypatch), _Instant()
    result = _dispatch(shop, gateway)
    assert result.sent == 350 and len(set(gateway.sent)) == 350
    assert limits == [100, 200, 200]


def test_a_slow_sender_is_not_claimed_ahead_past_the_horizon(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At one text a second a batch of 100 reserves slots 99 s ahead: no claim ahead of
    them (its slots would come past its lease), and no bigger claim next time."""
    _due_texts(shop, 150, rate=1)
    monkeypatch.setattr(dispatcher.time, "sleep", lambda _seconds: None)  # slots come at once
    limits, gateway = _claims(monkeypatch), _Instant()
    result = _dispatch(shop, gateway)
    assert limits == [100] and result.sent == 100
    with shop.database.sessions() as session:
        pace = session.get(SenderPace, "+14155550100")
    assert pace is not None and pace.next_slot_at > utcnow() + timedelta(seconds=90)
