"""The simulator: a deterministic busy day whose state is a pure function of (seed, t)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from integrations.dms.base import RepairOrderRecord
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.rest import RestBridgeAdapter
from integrations.dms.sim_people import vin_check_digit
from integrations.dms.simulator import SimulatorAdapter, simulator_status_map

START = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # 07:00 in Los Angeles


class Clock:
    """A wall clock tests move by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def sim_minutes(self, sim: SimulatorAdapter, minutes: float) -> None:
        self.now = sim.started_at + timedelta(minutes=minutes / sim.speed)


def _sim(clock: Clock, **kwargs: object) -> SimulatorAdapter:
    return SimulatorAdapter(clock=clock, **kwargs)  # type: ignore[arg-type]


def _read(sim: SimulatorAdapter, since: datetime | None) -> list[RepairOrderRecord]:
    return [sim.normalise(r) for page in sim.fetch_changed(since) for r in page.records]


def test_the_day_starts_at_seven_local_and_runs_at_speed() -> None:
    clock = Clock()
    sim = _sim(clock, speed=60.0)
    assert sim.day_start.isoformat() == "2026-11-22T07:00:00-08:00"
    clock.now = START + timedelta(minutes=2)
    assert sim.now() == sim.day_start + timedelta(hours=2)
    offset = _sim(Clock(), start_offset_minutes=180)
    assert offset.now() == offset.day_start + timedelta(hours=3)


def test_same_seed_and_time_give_identical_content_in_a_fresh_adapter() -> None:
    first_clock, second_clock = Clock(), Clock()
    first, second = _sim(first_clock, seed=7), _sim(second_clock, seed=7)
    first_clock.sim_minutes(first, 200)
    second_clock.sim_minutes(second, 200)
    hashes = [r.content_hash() for r in _read(first, None)]
    assert hashes == [r.content_hash() for r in _read(second, None)]
    assert hashes == [r.content_hash() for r in _read(first, None)]  # polling again: no change
    assert hashes != [r.content_hash() for r in _read(_sim(second_clock, seed=8), None)]


def test_since_returns_exactly_the_ros_updated_after_it() -> None:
    clock = Clock()
    sim = _sim(clock, ro_count=60)
    clock.sim_minutes(sim, 240)
    everything = sim.records_at(sim.now())
    since = sim.day_start + timedelta(minutes=150)
    expected = {
        r["ro_number"] for r in everything if datetime.fromisoformat(r["updated_at"]) > since
    }
    got = [r.ro_number for r in _read(sim, since)]
    assert set(got) == expected and len(got) == len(expected) and expected
    assert all(r.updated_at is not None and r.updated_at > since for r in _read(sim, since))
    assert _read(sim, sim.now()) == []


def test_without_since_every_open_ro_and_only_those() -> None:
    clock = Clock()
    sim = _sim(clock)
    clock.sim_minutes(sim, 420)
    records = _read(sim, None)
    assert records and all(r.raw_status not in ("CLOSED", "VOID") for r in records)
    assert all(r.closed_at is None for r in records)


def test_a_whole_day_walks_the_stages_with_the_wrinkles_the_app_must_handle() -> None:
    clock = Clock()
    sim = _sim(clock, ro_count=40)
    seen: Counter[str] = Counter()
    late = declined_brakes = 0
    for minute in range(0, 14 * 60, 20):
        clock.sim_minutes(sim, minute)
        for ro in _read(sim, sim.now() - timedelta(minutes=20)):
            seen[ro.raw_status] += 1
    clock.sim_minutes(sim, 14 * 60)
    final = [sim.normalise(sim.fetch_one(f"R{20001 + i}")) for i in range(40)]  # type: ignore[arg-type]
    for ro in final:
        ready = ro.closed_at or ro.updated_at
        finished = ro.raw_status in ("READY", "CLOSED")
        if ro.promised_at and ready and finished and ready > ro.promised_at:
            late += 1
        declined_brakes += any(
            line.op_code == "BRKPAD" and line.status == "declined" for line in ro.lines
        )
    assert set(simulator_status_map()) | {"HOLD"} >= set(seen)
    assert {"OPEN", "DIAG", "WAITAPPR", "WIP", "QC", "READY", "CLOSED", "HOLD"} <= set(seen)
    assert late >= 1 and declined_brakes >= 1
    customers = [ro.customer for ro in final if ro.customer]
    assert any(c.sms_consent is False for c in customers)
    assert {c.external_id for c in customers} >= {"C-10003", "C-20003"}  # one person, two ids
    digits = Counter(
        "".join(ch for ch in c.phones[0].number if ch.isdigit())[-10:] for c in customers
    )
    assert max(digits.values()) >= 2  # a household shares a phone
    for ro in final:
        assert ro.vehicle is not None and ro.vehicle.vin is not None
        assert ro.vehicle.vin[8] == vin_check_digit(ro.vehicle.vin)
        for phone in ro.customer.phones if ro.customer else ():
            assert "55501" in "".join(ch for ch in phone.number if ch.isdigit())


def test_hold_is_deliberately_unmapped() -> None:
    status_map = simulator_status_map()
    assert "HOLD" not in status_map
    assert status_map["READY"] == "ready_for_pickup" and status_map["VOID"] == "canceled"


def test_fetch_one_before_an_ro_opens_is_none() -> None:
    sim = _sim(Clock())
    assert sim.fetch_one("R20040") is None
    assert sim.fetch_one("nope") is None


@pytest.mark.parametrize("start", [0, 180])
def test_the_rest_fake_serves_the_simulators_day(start: float) -> None:
    clock = Clock()
    sim = _sim(clock, start_offset_minutes=start)
    clock.sim_minutes(sim, 120)
    fake = RestBridgeFake.from_simulator(sim, page_size=7)
    with FakeServer(fake.app) as server:
        adapter = RestBridgeAdapter(base_url=server.url, token="bridge-token", rooftop_slug="demo")
        over_http = [adapter.normalise(r) for p in adapter.fetch_changed(None) for r in p.records]
        adapter.close()
    direct = _read(sim, None)
    assert sorted(r.content_hash() for r in over_http) == sorted(r.content_hash() for r in direct)
