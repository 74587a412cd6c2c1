"""The simulator never runs dry: days roll over, regulars come back, declined work returns.

The clock is driven by hand: no test here sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integrations.dms.base import RepairOrderRecord
from integrations.dms.registry import validate_settings
from integrations.dms.simulator import SimulatorAdapter

LA = ZoneInfo("America/Los_Angeles")
# Saturday 31 Oct 2026, 07:00 in Los Angeles; the clocks fall back during the night after.
START = datetime(2026, 10, 31, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _read(sim: SimulatorAdapter, since: datetime | None) -> list[RepairOrderRecord]:
    return [sim.normalise(r) for page in sim.fetch_changed(since) for r in page.records]


def _numbers(records: list[RepairOrderRecord]) -> set[str]:
    return {r.ro_number for r in records}


def test_the_next_day_brings_new_ros_at_seven_local_across_a_clock_change() -> None:
    clock = Clock()
    sim = SimulatorAdapter(seed=1, ro_count=40, clock=clock)
    clock.now = START + timedelta(minutes=20 * 60 / sim.speed)  # 03:00 next day, no one in
    assert sim.now().astimezone(LA).hour == 3  # the fall-back hour has passed in the night
    night = _read(sim, None)
    assert night == [] or all(r.opened_at < sim.day_start + timedelta(hours=20) for r in night)
    end_of_day_one = sim.now()
    clock.now = START + timedelta(minutes=(24 + 3) * 60 / sim.speed)  # day 2, 10:00 or so
    fresh = _read(sim, end_of_day_one)
    assert fresh, "a new day brings new ROs"
    opened = {r.opened_at.astimezone(LA) for r in fresh}
    assert min(opened).date() == START.astimezone(LA).date() + timedelta(days=1)
    assert min(opened).hour >= 7  # 07:00 on the wall, though the day was 25 hours long
    assert all(number >= "R20081" for number in _numbers(fresh))
    # Days keep coming: a week on, the shop is still busy and numbers never repeat.
    seen: dict[str, datetime] = {}
    for day in range(7):
        clock.now = START + timedelta(minutes=(day * 24 + 6) * 60 / sim.speed)
        for record in _read(sim, None):
            assert seen.setdefault(record.ro_number, record.opened_at) == record.opened_at
    assert len(seen) >= 6 * 20


def test_regulars_come_back_on_later_days_as_the_same_person_and_car() -> None:
    clock = Clock()
    sim = SimulatorAdapter(seed=1, ro_count=40, clock=clock)
    people: dict[str, set[tuple[str, str]]] = {}
    for day in range(4):
        clock.now = START + timedelta(minutes=(day * 24 + 14) * 60 / sim.speed)
        for r in sim.records_at(sim.now()):
            vin = r["vehicle"]["vin"]
            people.setdefault(r["customer"]["id"], set()).add(
                (r["customer"]["phones"][0]["number"], vin)
            )
    assert len(people) >= 90  # the cast of 97 people (one has two ids)
    returning = [key for key, seen in people.items() if len(seen) == 1]
    assert len(returning) >= 90  # the same phone and car every visit


def test_a_customer_who_declined_work_comes_back_for_it_after_the_close() -> None:
    clock = Clock()
    sim = SimulatorAdapter(seed=1, ro_count=40, clock=clock, return_percent=40)
    clock.now = START + timedelta(minutes=20 * 60 / sim.speed)
    records = sim.records_at(sim.now())
    by_number = {r["ro_number"]: r for r in records}
    first = by_number["R20002"]  # RO 1 declines brakes and always comes back
    declined = [line for line in first["lines"] if line["status"] == "declined"]
    assert [line["op_code"] for line in declined][:1] == ["BRKPAD"]
    returns = [
        r
        for r in records
        if r["ro_number"] > "R20040" and r["vehicle"]["vin"] == first["vehicle"]["vin"]
    ]
    assert len(returns) == 1
    back = returns[0]
    assert back["opened_at"] > first["closed_at"]
    assert back["customer"]["id"] == first["customer"]["id"]
    assert {line["op_code"] for line in back["lines"]} == {ln["op_code"] for ln in declined}
    assert {line["status"] for line in back["lines"]} == {"completed"}
    assert back["status"] == "CLOSED"
    others = [r for r in records if r["ro_number"] > "R20040"]
    assert len(others) >= 3  # some of the rest come back too


def test_on_the_live_timeline_every_time_is_real_and_days_take_minutes() -> None:
    clock = Clock()
    sim = SimulatorAdapter(
        seed=2,
        ro_count=30,
        clock=clock,
        live=True,
        day_minutes=600,
        start_offset_minutes=150,
        return_percent=40,
    )
    assert sim.now() == START
    early = _read(sim, None)
    assert early and all(r.opened_at <= START for r in early)  # cars already in the shop
    counts = []
    for minute in range(1, 31):
        clock.now = START + timedelta(minutes=minute)
        records = sim.records_at(sim.now())
        assert all(r["updated_at"] <= clock.now.isoformat().replace("+00:00", "Z") for r in records)
        counts.append(len(records))
    # Twenty-five real minutes cross two day boundaries (ten minutes a day at 60x)...
    assert sim.day_at(clock.now) == 3
    # ...and new ROs arrive in every five-minute stretch of them.
    assert all(later > earlier for earlier, later in zip(counts[::5], counts[5::5], strict=False))
    last = sim.fetch_one("R30001")
    assert last is not None and last.payload["status"] == "CLOSED"
    assert sim.fetch_one("R99999") is None


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"live": "yes"}, "dms.live: expected true or false"),
        ({"days": 0}, "dms.days: expected a whole number"),
        ({"return_percent": -1}, "dms.return_percent: expected a non-negative number"),
    ],
)
def test_bad_simulator_settings_name_the_key(settings: dict[str, object], problem: str) -> None:
    assert any(problem in p for p in validate_settings("simulator", settings))


def test_day_length_and_return_share_are_checked() -> None:
    with pytest.raises(ValueError, match="day_minutes must be 480-1440"):
        SimulatorAdapter(live=True, day_minutes=60)
    with pytest.raises(ValueError, match="return_percent 0-100"):
        SimulatorAdapter(return_percent=150)
