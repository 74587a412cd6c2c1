"""Named leases: one holder at a time, taken over only after expiry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from app.deps import Database
from app.ops.leases import acquire_lease, lease_holder, release_lease, renew_lease

T0 = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


def acquire(database: Database, holder: str, now: datetime = T0) -> bool:
    with database.transaction() as session:
        return acquire_lease(session, name="job:x", holder=holder, ttl=TTL, now=now)


def test_one_holder_until_expiry(database: Database) -> None:
    assert acquire(database, "a")
    assert not acquire(database, "b", T0 + timedelta(seconds=59))
    assert acquire(database, "a", T0 + timedelta(seconds=30))  # re-acquiring extends it
    assert not acquire(database, "b", T0 + timedelta(seconds=60))
    assert acquire(database, "b", T0 + timedelta(seconds=91))  # a died: expired, taken over
    with database.transaction() as session:
        assert not renew_lease(session, name="job:x", holder="a", ttl=TTL, now=T0)
        assert lease_holder(session, name="job:x", now=T0 + timedelta(seconds=100)) == "b"


def test_release_lets_the_next_worker_in_at_once(database: Database) -> None:
    assert acquire(database, "a")
    with database.transaction() as session:
        assert not release_lease(session, name="job:x", holder="b")
        assert release_lease(session, name="job:x", holder="a")
        assert not release_lease(session, name="job:x", holder="a")  # released once
    assert acquire(database, "b", T0 - timedelta(seconds=30))  # even on a clock running behind


def test_racing_threads_get_one_winner(database: Database) -> None:
    barrier = threading.Barrier(4)
    wins: list[str] = []

    def race(name: str) -> None:
        barrier.wait()
        if acquire(database, name):
            wins.append(name)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(wins) == 1
