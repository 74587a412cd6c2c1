"""Polling a rooftop: overlap, quarantine, vanished ROs, health, leases, many rooftops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.dealers.models import Rooftop
from app.deps import Database
from app.ops.leases import acquire_lease, lease_holder
from app.ops.models import Lease
from app.repair_orders.changes import ChangeHook
from app.repair_orders.models import (
    DmsPollState,
    QuarantinedRecord,
    RepairOrder,
    RoEvent,
    UnmappedStatus,
)
from app.repair_orders.poller import poll_due_rooftops, poll_rooftop
from integrations.dms.base import (
    DmsAdapter,
    DmsAuthError,
    DmsPage,
    RawRecord,
    RepairOrderRecord,
)
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.rest import RestBridgeAdapter
from integrations.dms.simulator import SimulatorAdapter
from tests.app.repair_orders.conftest import NOW, ScriptedDms, WriteCounter, bridge_record

HEALTH_TABLES = ("dms_poll_state", "lease")


def ids(database: Database) -> dict[str, int]:
    with database.transaction() as session:
        return {r.slug: r.id for r in session.scalars(select(Rooftop))}


def poll(database: Database, adapter: DmsAdapter, rooftop: str = "bayview-toyota", **kw):
    return poll_rooftop(
        database,
        rooftop_id=ids(database)[rooftop],
        adapter_factory=lambda _r: adapter,
        hooks=[],
        clock=lambda: NOW,
        worker_id=kw.pop("worker_id", "w1"),
        **kw,
    )


def test_simulator_day_is_stored_and_a_re_read_costs_zero_writes(dealer: Database, engine) -> None:
    sim = SimulatorAdapter(seed=1, ro_count=40, start_offset_minutes=240, clock=lambda: NOW)
    first = poll(dealer, sim)
    assert first.outcome == "ok" and first.counts["changed"] > 20
    with dealer.transaction() as session:
        cursor = session.get(DmsPollState, ids(dealer)["bayview-toyota"]).cursor_at
        assert cursor is not None
    # The world has not moved; a (deliberately huge) overlap re-reads the whole day.
    with WriteCounter(engine) as writes:
        second = poll(dealer, sim, overlap=timedelta(hours=24))
    assert second.outcome == "ok" and second.counts["changed"] == 0
    assert second.counts["seen"] == second.counts["unchanged"] > 20
    assert writes.excluding(*HEALTH_TABLES) == []


def test_overlap_is_asked_for_and_the_cursor_never_moves_back(
    dealer: Database, session: Session
) -> None:
    dms = ScriptedDms(pages=[[bridge_record("R1", updated_at="2026-11-22T17:40:00Z")]])
    poll(dealer, dms)
    dms.pages = [[bridge_record("R0", updated_at="2026-11-22T17:00:00Z")]]  # an older straggler
    poll(dealer, dms)
    state = session.get(DmsPollState, ids(dealer)["bayview-toyota"])
    assert dms.calls[1] == state.cursor_at - timedelta(minutes=5)
    assert state.cursor_at.isoformat() == "2026-11-22T17:40:00+00:00"
    assert dms.acked == 2


def test_a_malformed_record_is_quarantined_and_the_page_goes_on(
    dealer: Database, session: Session
) -> None:
    broken = bridge_record("R2", opened_at="yesterday-ish")
    dms = ScriptedDms(pages=[[bridge_record("R1"), broken, bridge_record("R3")]])
    result = poll(dealer, dms)
    assert result.outcome == "ok"
    assert (result.counts["changed"], result.counts["quarantined"]) == (2, 1)
    poll(dealer, dms)  # the same bad payload again: still one quarantine row
    rows = session.scalars(select(QuarantinedRecord)).all()
    assert [(r.ro_number, r.reason.split(":")[0]) for r in rows] == [("R2", "opened_at")]
    assert sorted(session.scalars(select(RepairOrder.ro_number))) == ["R1", "R3"]


def test_unmapped_status_counted_with_example_and_stage_kept(
    dealer: Database, session: Session
) -> None:
    poll(dealer, ScriptedDms(pages=[[bridge_record("R1", status="WIP")]]))
    poll(dealer, ScriptedDms(pages=[[bridge_record("R1", status="SUBLET")]]))
    ro = session.scalars(select(RepairOrder)).one()
    assert (ro.stage, ro.raw_status) == ("in_repair", "SUBLET")
    row = session.scalars(select(UnmappedStatus)).one()
    assert (row.raw_status, row.count, row.example_ro_number) == ("SUBLET", 1, "R1")


def test_a_vanished_ro_is_confirmed_before_it_is_closed(dealer: Database, session: Session) -> None:
    dms = ScriptedDms(snapshot=True, pages=[[bridge_record("R1"), bridge_record("R2")]])
    poll(dealer, dms)
    dms.pages = [[bridge_record("R2")]]
    # R1 missing: asked about by number; the DMS has closed it -> applied at once.
    dms.known["R1"] = bridge_record("R1", status="CLOSED", closed_at="2026-11-22T17:55:00Z")
    poll(dealer, dms)
    assert (
        session.scalars(select(RepairOrder.stage).where(RepairOrder.ro_number == "R1")).one()
        == "closed"
    )
    session.rollback()
    # R2 missing and unknown to the DMS: closed only on the third miss in a row.
    dms.pages, dms.known = [[]], {}
    for expected in ("ready_for_pickup", "ready_for_pickup", "closed"):
        poll(dealer, dms)
        ro = session.scalars(select(RepairOrder).where(RepairOrder.ro_number == "R2")).one()
        assert ro.stage == expected
        session.rollback()
    kinds = session.scalars(select(RoEvent.kind).where(RoEvent.repair_order_id == ro.id)).all()
    assert kinds == ["stage", "vanished"]


def test_an_ro_back_in_the_snapshot_is_no_longer_missing(
    dealer: Database, session: Session
) -> None:
    dms = ScriptedDms(snapshot=True, pages=[[bridge_record("R1"), bridge_record("R2")]])
    poll(dealer, dms)
    dms.pages = [[bridge_record("R3")]]  # R1 and R2 left out, and unknown when asked
    poll(dealer, dms)
    missing = session.scalars(select(RepairOrder).where(RepairOrder.missing_polls == 1)).all()
    assert sorted(ro.ro_number for ro in missing) == ["R1", "R2"]
    assert all(ro.missing_since is not None for ro in missing)
    session.rollback()
    # Back: R1 as it was (no write but the reset), R2 moved on (its update resets it too),
    # beside R3 moving on while never missing.
    dms.pages = [
        [bridge_record("R1"), bridge_record("R2", status="QC"), bridge_record("R3", status="QC")]
    ]
    poll(dealer, dms)
    ros = {ro.ro_number: ro for ro in session.scalars(select(RepairOrder))}
    assert {n: (ro.missing_polls, ro.missing_since) for n, ro in ros.items()} == {
        "R1": (0, None),
        "R2": (0, None),
        "R3": (0, None),
    }
    assert (ros["R2"].stage, ros["R3"].stage) == ("quality_check", "quality_check")


@dataclass
class PacedDms(ScriptedDms):
    """Pages whose acks (each page committed) run `between(page number)`: time passing."""

    between: Callable[[int], None] = field(default=lambda _n: None)

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        for n, page in enumerate(super().fetch_changed(since), start=1):
            page.ack = lambda n=n: self.between(n)
            yield page


def _paced_poll(
    dealer: Database, now: list[datetime], dms: PacedDms, hooks: Sequence[ChangeHook] = ()
):
    return poll_rooftop(
        dealer,
        rooftop_id=ids(dealer)["bayview-toyota"],
        adapter_factory=lambda _r: dms,
        hooks=list(hooks),
        clock=lambda: now[0],
        worker_id="w1",
        lease_ttl=timedelta(minutes=2),
    )


def _take_over(dealer: Database, at: datetime) -> bool:
    rooftop_id = ids(dealer)["bayview-toyota"]
    with dealer.transaction() as session:
        return acquire_lease(
            session, name=f"dms:{rooftop_id}", holder="w2", ttl=timedelta(minutes=2), now=at
        )


def test_a_poll_that_outlives_its_lease_stops_writing(dealer: Database, session: Session) -> None:
    now = [NOW]
    pages = [[bridge_record(f"R{n}", updated_at=f"2026-11-22T17:0{n}:00Z")] for n in (1, 2, 3)]

    def stall(page: int) -> None:
        if page == 1:  # after page 1 the worker stalls past its lease; w2 takes the rooftop
            now[0] = NOW + timedelta(minutes=3)
            assert _take_over(dealer, now[0])

    result = _paced_poll(dealer, now, PacedDms(pages=pages, between=stall))
    assert result.outcome == "failed" and "lease lost" in (result.error or "")
    assert session.scalars(select(RepairOrder.ro_number)).all() == ["R1"]  # page 1 only
    state = session.scalars(select(DmsPollState)).one()
    assert state is not None and state.cursor_at == NOW.replace(hour=17, minute=1)


def test_a_long_poll_renews_its_lease_as_it_goes(dealer: Database, session: Session) -> None:
    now = [NOW]
    taken: list[bool] = []

    def slow(page: int) -> None:  # a minute a page, against a lease of two
        now[0] += timedelta(minutes=1)
        if page == 2:
            taken.append(_take_over(dealer, now[0] + timedelta(seconds=30)))

    pages = [[bridge_record(f"R{n}")] for n in (1, 2, 3)]
    result = _paced_poll(dealer, now, PacedDms(pages=pages, between=slow))
    assert result.outcome == "ok" and result.counts["changed"] == 3
    assert taken == [False]  # at 2.5 minutes the lease, renewed at 1, was still w1's


def test_a_failing_rooftop_never_stops_another(dealer: Database, session: Session) -> None:
    rooftops = ids(dealer)
    adapters = {
        rooftops["bayview-toyota"]: ScriptedDms(
            error=DmsAuthError(
                "401 for Bearer s3cr3t-token", rooftop_slug="bayview-toyota", kind="rest"
            )
        ),
        rooftops["bayview-ford"]: ScriptedDms(pages=[[bridge_record("F1")]]),
    }
    results = poll_due_rooftops(
        dealer,
        adapter_factory=lambda r: adapters[r.id],
        hooks=[],
        clock=lambda: NOW,
        worker_id="w1",
        max_workers=2,
    )
    by_id = {r.rooftop_id: r for r in results}
    assert by_id[rooftops["bayview-ford"]].outcome == "ok"
    failed = by_id[rooftops["bayview-toyota"]]
    assert failed.outcome == "failed" and "bayview-toyota" in failed.error
    assert "s3cr3t" not in failed.error
    state = session.get(DmsPollState, rooftops["bayview-toyota"])
    assert state.consecutive_failures == 1 and state.last_success_at is None
    session.rollback()
    # Nothing is due again until poll_seconds have passed.
    assert (
        poll_due_rooftops(
            dealer,
            adapter_factory=lambda r: adapters[r.id],
            hooks=[],
            clock=lambda: NOW,
            worker_id="w1",
        )
        == []
    )


def test_only_one_worker_polls_a_rooftop_at_a_time(dealer: Database) -> None:
    inside, release = threading.Event(), threading.Event()

    class SlowDms(ScriptedDms):
        def fetch_changed(self, since):  # type: ignore[no-untyped-def]
            inside.set()
            release.wait(timeout=30)
            yield from super().fetch_changed(since)

    results = {}
    slow = SlowDms(pages=[[bridge_record("R1")]])
    first = threading.Thread(target=lambda: results.update(a=poll(dealer, slow, worker_id="a")))
    first.start()
    assert inside.wait(timeout=30)
    results["b"] = poll(dealer, ScriptedDms(pages=[[bridge_record("R1")]]), worker_id="b")
    release.set()
    first.join(timeout=30)
    assert (results["a"].outcome, results["b"].outcome) == ("ok", "skipped")
    assert poll(dealer, ScriptedDms(), worker_id="b").outcome == "ok"  # released afterwards


def test_polls_the_rest_bridge_over_http_with_paging(dealer: Database, session: Session) -> None:
    fake = RestBridgeFake(page_size=2)
    fake.put(*(bridge_record(f"R{i}", updated_at=f"2026-11-22T17:4{i}:00Z") for i in range(5)))
    with FakeServer(fake.app) as server:
        good = RestBridgeAdapter(
            base_url=server.url, token="bridge-token", rooftop_slug="bayview-toyota"
        )
        result = poll(dealer, good)
        bad = RestBridgeAdapter(
            base_url=server.url, token="wrong-token", rooftop_slug="bayview-toyota"
        )
        refused = poll(dealer, bad)
        good.close()
        bad.close()
    assert result.outcome == "ok" and result.counts["changed"] == 5
    assert refused.outcome == "failed" and "wrong-token" not in (refused.error or "")
    assert len(session.scalars(select(RepairOrder)).all()) == 5


def test_a_record_that_cannot_be_stored_is_set_aside_and_the_page_kept(
    dealer: Database, session: Session
) -> None:
    def picky_rule(_session: Session, change) -> None:  # type: ignore[no-untyped-def]
        if change.ro.ro_number == "R2":
            raise RuntimeError("rule broke on R2")

    result = poll_rooftop(
        dealer,
        rooftop_id=ids(dealer)["bayview-toyota"],
        adapter_factory=lambda _r: ScriptedDms(pages=[[bridge_record(f"R{i}") for i in (1, 2, 3)]]),
        hooks=[picky_rule],
        clock=lambda: NOW,
        worker_id="w1",
    )
    assert (result.outcome, result.counts["changed"], result.counts["quarantined"]) == ("ok", 2, 1)
    assert sorted(session.scalars(select(RepairOrder.ro_number))) == ["R1", "R3"]
    assert "rule broke on R2" in session.scalars(select(QuarantinedRecord.reason)).one()


def test_a_renewal_rolled_back_with_a_failed_batch_is_made_again(
    dealer: Database, session: Session
) -> None:
    now, expiries = [NOW], []

    def picky_rule(_session: Session, change) -> None:  # type: ignore[no-untyped-def]
        if change.ro.ro_number == "R2":
            raise RuntimeError("rule broke on R2")

    def later(page: int) -> None:  # after the page committed: the lease as stored
        with dealer.transaction() as s:
            expiries.append(s.scalars(select(Lease.expires_at)).one())
        now[0] += timedelta(minutes=1)

    pages = [[bridge_record("R1")], [bridge_record(f"R{i}") for i in (2, 3)]]
    result = _paced_poll(dealer, now, PacedDms(pages=pages, between=later), hooks=[picky_rule])
    assert (result.outcome, result.counts["quarantined"]) == ("ok", 1)
    # Page 2 (at 1 minute) renewed the lease in its batch, rolled back with it; the
    # record-by-record retry renewed it again.
    assert expiries == [NOW + timedelta(minutes=2), NOW + timedelta(minutes=3)]


def test_a_page_none_of_which_can_be_stored_fails_and_keeps_its_cursor(
    dealer: Database, session: Session
) -> None:
    """When every record fails, the fault is Pitwall's, not the DMS's: retry, don't quarantine."""

    def broken_rule(_session: Session, change) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("rule is broken for everyone")

    dms = ScriptedDms(pages=[[bridge_record(f"R{i}") for i in (1, 2, 3)]])
    rooftop_id = ids(dealer)["bayview-toyota"]
    result = poll_rooftop(
        dealer,
        rooftop_id=rooftop_id,
        adapter_factory=lambda _r: dms,
        hooks=[broken_rule],
        clock=lambda: NOW,
        worker_id="w1",
    )
    assert result.outcome == "failed"
    assert "page not stored, will retry" in (result.error or "")
    assert "rule is broken for everyone" in (result.error or "")
    assert session.scalars(select(QuarantinedRecord)).all() == []
    assert session.scalars(select(RepairOrder)).all() == []
    assert dms.acked == 0  # the DMS is not told to forget a page we did not keep
    state = session.get(DmsPollState, rooftop_id)
    assert state is not None and state.cursor_at is None and state.consecutive_failures == 1
    session.rollback()  # end the read transaction: on SQLite it holds the write lock

    # Once the rule is fixed, the same records are read again and stored.
    fixed = poll_rooftop(
        dealer,
        rooftop_id=rooftop_id,
        adapter_factory=lambda _r: dms,
        hooks=[],
        clock=lambda: NOW,
        worker_id="w1",
    )
    assert (fixed.outcome, fixed.counts["changed"]) == ("ok", 3)


class _HeldWhileReadAhead(ScriptedDms):
    """Tells when the poller has normalised a record of the second page, which it reads
    ahead while the first is still being written."""

    def __init__(self, pages: list[list[dict]]) -> None:  # type: ignore[type-arg]
        super().__init__(pages=pages)
        self.second_page = {id(record) for record in pages[1]}
        self.second_page_read = threading.Event()

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        if id(record.payload) in self.second_page:
            self.second_page_read.set()
        return super().normalise(record)


@pytest.mark.postgres_only  # SQLite reads each page inline, just before its write
def test_an_ro_on_two_pages_in_a_row_is_decided_on_what_the_first_page_stored(
    dealer: Database, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """Page 2 is read ahead while page 1 is written, so what it read of R1 and R2 is stale
    by the time it is stored: they are read again, and nothing is decided twice."""
    poll(dealer, ScriptedDms(pages=[[bridge_record("R1", status="OPEN")]]))
    dms = _HeldWhileReadAhead(
        pages=[
            [
                bridge_record("R1", status="WIP", updated_at="2026-11-22T17:41:00Z"),
                bridge_record("R2", status="OPEN", updated_at="2026-11-22T17:41:00Z"),
            ],
            [
                bridge_record("R1", status="READY", updated_at="2026-11-22T17:42:00Z"),
                bridge_record("R2", status="WIP", updated_at="2026-11-22T17:42:00Z"),
            ],
        ]
    )
    seen: list[tuple[str, bool, str | None, str]] = []

    def hold_page_one_until_page_two_is_read(_session: Session, change) -> None:  # type: ignore[no-untyped-def]
        seen.append((change.ro.ro_number, change.is_new, change.previous_stage, change.ro.stage))
        if len(seen) <= 2:
            assert dms.second_page_read.wait(10), "page 2 was not read ahead of page 1's commit"

    result = poll_rooftop(
        dealer,
        rooftop_id=ids(dealer)["bayview-toyota"],
        adapter_factory=lambda _r: dms,
        hooks=[hold_page_one_until_page_two_is_read],
        clock=lambda: NOW,
        worker_id="w1",
    )
    assert (result.outcome, result.counts["changed"], dms.acked) == ("ok", 4, 2)
    assert "failed as a batch" not in caplog.text  # R2 was not inserted twice
    assert sorted(seen) == [
        ("R1", False, "checked_in", "in_repair"),
        ("R1", False, "in_repair", "ready_for_pickup"),
        ("R2", False, "checked_in", "in_repair"),
        ("R2", True, None, "checked_in"),
    ]
    stages = session.execute(
        select(RoEvent.from_stage, RoEvent.to_stage)
        .join(RepairOrder, RepairOrder.id == RoEvent.repair_order_id)
        .where(RepairOrder.ro_number == "R1", RoEvent.to_stage.is_not(None))
        .order_by(RoEvent.id)
    ).all()
    assert [tuple(row) for row in stages][-2:] == [
        ("checked_in", "in_repair"),
        ("in_repair", "ready_for_pickup"),
    ]


def _poll_in_another_process(url: str, rooftop_id: int, worker: str, hold: float, out) -> None:  # type: ignore[no-untyped-def]
    import time

    from app.db import make_engine, make_session_factory

    class Held(ScriptedDms):
        def fetch_changed(self, since):  # type: ignore[no-untyped-def]
            time.sleep(hold)
            yield from super().fetch_changed(since)

    engine = make_engine(url)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    result = poll_rooftop(
        database,
        rooftop_id=rooftop_id,
        adapter_factory=lambda _r: Held(pages=[[bridge_record("R1")]]),
        hooks=[],
        clock=lambda: NOW,
        worker_id=worker,
    )
    out.put((worker, result.outcome))
    engine.dispose()


@pytest.mark.postgres_only
def test_two_worker_processes_one_polls(dealer: Database, database_url: str) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    rooftop_id = ids(dealer)["bayview-toyota"]
    holder = context.Process(
        target=_poll_in_another_process, args=(database_url, rooftop_id, "p1", 4.0, out)
    )
    holder.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until p1 holds the lease
        with dealer.transaction() as session:
            if lease_holder(session, name=f"dms:{rooftop_id}", now=NOW) == "p1":
                break
        time.sleep(0.05)
    other = context.Process(
        target=_poll_in_another_process, args=(database_url, rooftop_id, "p2", 0.0, out)
    )
    other.start()
    results = dict(out.get(timeout=60) for _ in range(2))
    holder.join(timeout=30)
    other.join(timeout=30)
    assert results == {"p1": "ok", "p2": "skipped"}


def test_worker_job_polls_every_due_rooftop_with_cached_adapters(dealer: Database) -> None:
    from app.repair_orders.jobs import AdapterCache, DmsPollJob

    cache = AdapterCache()
    job = DmsPollJob(dealer, adapter_factory=cache, hooks=[], worker_id="w1", max_workers=2)
    try:
        results = job.run_once()
        assert sorted(r.outcome for r in results) == ["ok", "ok"]
        with dealer.transaction() as session:
            toyota = session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-toyota")).one()
        assert cache(toyota) is cache(toyota)  # the simulator keeps its clock across polls
        assert job.tick() == []  # nothing due again before poll_seconds
    finally:
        job.shutdown()
        cache.close()
