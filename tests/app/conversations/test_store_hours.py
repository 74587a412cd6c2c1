"""Store hours, holidays and special days: when the store is open, and when it opens next.

The same answer reaches a customer's text (the acknowledgement), a call (the voice
menu after hours) and the missed-call text-back, all from app/dealers/hours.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import ConfigError, load_dealer_config
from app.dealers.hours import StoreHours
from app.dealers.service import forget_cached_rooftops
from app.deps import Database
from app.messaging.models import OutboundMessage
from tests.app.conversations.conftest import (
    FORD_SMS,
    Twilio,
    customer_on,
    repair_order,
    rooftop,
)
from tests.app.conversations.test_messages import reply_of
from tests.support import SAMPLE_CONFIG

LA = "America/Los_Angeles"
SAM = "+14155550142"
WEEK = "Mon-Fri 7:00-18:00, Sat 8:00-16:00"


def hours(**kwargs: object) -> StoreHours:
    from zoneinfo import ZoneInfo

    return StoreHours.build(store_hours=WEEK, zone=ZoneInfo(LA), **kwargs)  # type: ignore[arg-type]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_holiday_on_a_monday_moves_the_next_opening_to_tuesday() -> None:
    saturday_evening = utc(2026, 12, 27, 1, 0)  # Sat 26 Dec, 17:00 in Los Angeles
    store = hours(holidays=[date(2026, 12, 28)])  # Monday
    assert not store.is_open(saturday_evening)
    assert store.next_opening(saturday_evening) == utc(2026, 12, 29, 15, 0)  # Tue 7:00 PST
    assert hours().next_opening(saturday_evening) == utc(2026, 12, 28, 15, 0)  # Mon without it
    assert not store.is_open(utc(2026, 12, 28, 18, 0))  # Monday 10:00: closed all day
    assert store.is_holiday(utc(2026, 12, 28, 18, 0))


def test_the_next_opening_keeps_local_time_across_daylight_saving_changes() -> None:
    # Saturday 31 Oct 2026 after closing; clocks fall back on Sunday 1 Nov.
    before_fall_back = utc(2026, 11, 1, 0, 30)  # Sat 17:30 PDT
    assert hours().next_opening(before_fall_back) == utc(2026, 11, 2, 15, 0)  # Mon 7:00 PST
    # Saturday 7 Mar 2026 after closing; clocks spring forward on Sunday 8 Mar.
    before_spring = utc(2026, 3, 8, 1, 0)  # Sat 17:00 PST
    assert hours().next_opening(before_spring) == utc(2026, 3, 9, 14, 0)  # Mon 7:00 PDT
    # A holiday on that Monday after the change: Tuesday, still 7:00 local.
    store = hours(holidays=[date(2026, 3, 9)])
    assert store.next_opening(before_spring) == utc(2026, 3, 10, 14, 0)


def test_special_hours_replace_the_week_for_that_day() -> None:
    store = hours(
        holidays=[date(2026, 12, 25)],
        special_hours={date(2026, 12, 24): "8:00-12:00", date(2026, 12, 26): "closed"},
    )
    christmas_eve_morning = utc(2026, 12, 24, 17, 0)  # Thu 9:00 PST
    assert store.is_open(christmas_eve_morning)
    afternoon = utc(2026, 12, 24, 21, 0)  # 13:00: a normal Thursday would be open
    assert not store.is_open(afternoon)
    # Fri 25 a holiday, Sat 26 closed, Sun closed: Monday 28 at 7:00.
    assert store.next_opening(afternoon) == utc(2026, 12, 28, 15, 0)
    early = utc(2026, 12, 24, 14, 0)  # 6:00: it opens at 8:00 that day, not 7:00
    assert store.next_opening(early) == utc(2026, 12, 24, 16, 0)


def test_a_store_open_around_the_clock_is_never_closed_and_never_opens() -> None:
    from zoneinfo import ZoneInfo

    store = StoreHours.build(store_hours="Mon-Sun 0:00-24:00", zone=ZoneInfo(LA))
    for moment in (utc(2026, 12, 6, 9, 54), utc(2026, 12, 7, 7, 59), utc(2026, 11, 1, 9, 30)):
        assert store.is_open(moment)
        assert store.closed_until(moment) is None
    closed_sunday = StoreHours.build(
        store_hours="Mon-Sat 0:00-24:00", zone=ZoneInfo(LA), holidays=[date(2026, 12, 8)]
    )
    # Sunday: the next opening is Monday 0:00, and Tuesday's holiday ends at Wednesday 0:00.
    assert closed_sunday.next_opening(utc(2026, 12, 6, 20, 0)) == utc(2026, 12, 7, 8, 0)
    assert closed_sunday.next_opening(utc(2026, 12, 8, 20, 0)) == utc(2026, 12, 9, 8, 0)


def _sample_without_days() -> str:
    """The sample dealer file without its own holidays and special days."""
    lines = SAMPLE_CONFIG.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(x for x in lines if not x.startswith(("holidays =", "special_hours =")))


def _with(tmp_path: Path, extra: str) -> Path:
    text = _sample_without_days().replace(
        'store_hours = "Mon-Fri 7:00-18:00, Sat 8:00-16:00"',
        'store_hours = "Mon-Fri 7:00-18:00, Sat 8:00-16:00"\n' + extra,
        1,
    )
    path = tmp_path / "dealer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_holidays_and_special_hours_load_from_the_dealer_file(tmp_path: Path) -> None:
    path = _with(
        tmp_path,
        'holidays = [2026-12-25, "2027-01-01"]\nspecial_hours = { "2026-12-24" = "8:00-12:00" }',
    )
    toyota = load_dealer_config(path).rooftop[0]
    assert toyota.holidays == [date(2026, 12, 25), date(2027, 1, 1)]
    assert toyota.hours.spans_on(date(2026, 12, 24))[0][1].hour == 12
    assert not toyota.hours.is_open(utc(2026, 12, 25, 18, 0))


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ('holidays = ["2026-13-01"]', "rooftop[bayview-toyota].holidays[0]", "valid date"),
        (
            'special_hours = { "2026-12-24" = "noon" }',
            "rooftop[bayview-toyota].special_hours",
            "2026-12-24: cannot read 'noon'",
        ),
        (
            'holidays = [2026-12-24]\nspecial_hours = { "2026-12-24" = "8:00-12:00" }',
            "rooftop[bayview-toyota]",
            "holidays: 2026-12-24 is also in special_hours",
        ),
    ],
)
def test_a_bad_holiday_or_special_day_is_refused_naming_the_key(
    tmp_path: Path, extra: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_dealer_config(_with(tmp_path, extra))
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_the_sample_dealer_file_carries_holidays_and_special_days() -> None:
    toyota = load_dealer_config(SAMPLE_CONFIG).rooftop[0]
    assert date(2026, 12, 25) in toyota.holidays
    christmas_eve_afternoon = utc(2026, 12, 24, 21, 0)  # Thu 13:00: closed at noon that day
    assert not toyota.hours.is_open(christmas_eve_afternoon)
    # Fri 25 is a holiday: Saturday 26 at 8:00.
    assert toyota.hours.next_opening(christmas_eve_afternoon) == utc(2026, 12, 26, 16, 0)


def test_bad_store_hours_are_refused_at_load(tmp_path: Path) -> None:
    text = _sample_without_days().replace(
        'store_hours = "Mon-Fri 7:00-18:00, Sat 8:00-16:00"', 'store_hours = "Mon-Fri 18:00-7:00"'
    )
    path = tmp_path / "dealer.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_dealer_config(path)
    assert caught.value.key == "rooftop[bayview-toyota].store_hours"
    assert "closes before it opens" in caught.value.problem


def _holidays(session: Session, slug: str, *days: date) -> None:
    found = rooftop(session, slug)
    found.config = {**found.config, "holidays": [d.isoformat() for d in days]}
    session.commit()
    forget_cached_rooftops()


def test_on_a_monday_holiday_a_text_is_told_the_store_opens_on_tuesday(
    twilio: Twilio, session: Session, clock: time_machine.Coordinates
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R46", stage="in_repair")
    _holidays(session, "bayview-toyota", date(2026, 11, 23))
    clock.move_to(utc(2026, 11, 23, 18, 0))  # Monday 10:00, a holiday
    answer = reply_of(twilio.text("can someone call me about the loaner", from_=SAM))
    assert answer == (
        "Thanks, we got your message. We're closed now; Dana Ruiz at Bayview Toyota "
        "will reply when we open, 7:00 AM tomorrow."
    )


def test_a_call_on_a_holiday_hears_when_the_store_opens_and_the_textback_says_it_too(
    twilio: Twilio, session: Session
) -> None:
    _holidays(session, "bayview-ford", date(2026, 11, 23), date(2026, 11, 24))
    with time_machine.travel(utc(2026, 11, 23, 18, 0), tick=False):  # Monday 10:00
        response = twilio.call(from_=SAM, to=FORD_SMS)
    root = ElementTree.fromstring(response.text)
    said = " ".join(s.text or "" for s in root.findall("Say"))
    assert "closed today for a holiday" in said
    assert "when we open, Wed Nov 25 at 7:00 AM." in said
    assert root.find("Dial") is None and root.find("Gather") is None
    textback = session.scalars(select(OutboundMessage)).one()
    assert textback.kind == "textback"
    assert "call you back when we open, Wed Nov 25 at 7:00 AM." in (textback.body or "")


def test_pitwall_config_load_stores_holidays_and_names_a_bad_one(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    from tests.app.test_cli import run

    env = {"PITWALL_DATABASE_URL": database_url}
    good = _with(tmp_path, 'holidays = [2026-12-28]\nspecial_hours = { "2026-12-24" = "closed" }')
    loaded = run(["config", "load", str(good)], env)
    assert loaded.returncode == 0, loaded.stderr
    with database.sessions() as session:
        toyota = rooftop(session)
        assert toyota.settings.holidays == [date(2026, 12, 28)]
        assert toyota.settings.hours.spans_on(date(2026, 12, 24)) == ()
    bad = tmp_path / "bad.toml"
    bad.write_text(
        _sample_without_days()
        .replace(WEEK, "Mon-Fri 7:00-18:00", 1)
        .replace(
            'store_hours = "Mon-Fri 7:00-18:00"',
            'store_hours = "Mon-Fri 7:00-18:00"\nholidays = ["Dec 25"]',
            1,
        ),
        encoding="utf-8",
    )
    refused = run(["config", "load", str(bad)], env)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: {bad}: rooftop[bayview-toyota].holidays[0]: ")
    assert "valid date" in refused.stderr


def test_a_stranger_texting_the_closed_store_is_told_when_it_opens(
    twilio: Twilio, session: Session
) -> None:
    _holidays(session, "bayview-ford", date(2026, 11, 23))
    with time_machine.travel(utc(2026, 11, 23, 18, 0), tick=False):  # Monday 10:00, a holiday
        answer = reply_of(twilio.text("do you do alignments?", from_="+14155550888", to=FORD_SMS))
    assert answer is not None
    assert "we're closed now; an advisor will reply when we open, 7:00 AM tomorrow." in answer
    with time_machine.travel(utc(2026, 11, 24, 18, 0), tick=False):  # Tuesday 10:00, open
        answer = reply_of(twilio.text("hello?", from_="+14155550889", to=FORD_SMS))
    assert answer is not None and "an advisor will reply shortly." in answer
