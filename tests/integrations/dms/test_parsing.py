"""Field parsing and the content hash: the rules every adapter relies on."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from msgspec.structs import replace

from integrations.dms import parsing as p
from integrations.dms.base import DmsError, MalformedRecord
from integrations.dms.rest import normalise_bridge_record
from tests.integrations.dms.conftest import bridge_record


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("89.95", 8995),
        ("1,234.50", 123450),
        ("412.00", 41200),
        ("412", 41200),
        ("0.5", 50),
        ("$1,000,000.01", 100000001),
        ("-15.00", -1500),
        (" 7.10 ", 710),
        (89.95, 8995),
        (12, 1200),
    ],
)
def test_money_is_parsed_to_integer_cents_without_floats(text: object, cents: int) -> None:
    assert p.cents(text, "amount") == cents


@pytest.mark.parametrize("bad", ["", "abc", "12,34.5", "1.234", "1.2.3", "NaN", None, True, "1e3"])
def test_bad_money_is_a_malformed_record_naming_the_field(bad: object) -> None:
    with pytest.raises(MalformedRecord) as caught:
        p.cents(bad, "lines[1].amount")
    assert caught.value.reason.startswith("lines[1].amount: ")


def test_iso_times_become_aware_utc() -> None:
    assert p.iso_time("2026-11-22T15:02:00Z", "t") == datetime(2026, 11, 22, 15, 2, tzinfo=UTC)
    assert p.iso_time("2026-11-22T07:02:00-08:00", "t") == datetime(2026, 11, 22, 15, 2, tzinfo=UTC)
    assert p.iso_time(None, "t") is None


def test_a_time_without_offset_is_read_in_the_rooftop_zone_or_refused() -> None:
    la = ZoneInfo("America/Los_Angeles")
    assert p.iso_time("2026-07-01T09:00:00", "t", local=la) == datetime(2026, 7, 1, 16, tzinfo=UTC)
    with pytest.raises(MalformedRecord, match="without a UTC offset"):
        p.iso_time("2026-07-01T09:00:00", "promised_at")


def test_an_unreadable_time_names_the_field_and_value() -> None:
    with pytest.raises(MalformedRecord) as caught:
        p.iso_time("tomorrow", "promised_at")
    assert caught.value.reason == "promised_at: not an ISO 8601 time: 'tomorrow'"


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_required_text_refuses_a_missing_or_blank_value_by_name(value: object) -> None:
    with pytest.raises(MalformedRecord, match=r"^status: missing$"):
        p.required_text(value, "status")


def test_required_text_trims_text_and_reads_numbers_as_text() -> None:
    assert p.required_text("  R1001 ", "ro_number") == "R1001"
    assert p.required_text(1001, "ro_number") == "1001"
    with pytest.raises(MalformedRecord, match="ro_number: expected text"):
        p.required_text(True, "ro_number")


def test_vin_language_phone_kind_and_consent() -> None:
    assert p.vin(" jtmw1rfv5md012345 ") == "JTMW1RFV5MD012345"
    assert p.vin("JTMW1RFV5MD01234") is None  # 16 characters
    assert p.vin("JTMW1RFV5MD01234O") is None  # O is never used in a VIN
    assert [p.language(v) for v in ("EN", "es-MX", "fr_CA", "Spanish", "klingon", None)] == [
        "en",
        "es",
        "fr",
        "es",
        None,
        None,
    ]
    assert [p.phone_kind(v) for v in ("Cell", "MOBILE", "Business", "H", "fax")] == [
        "mobile",
        "mobile",
        "work",
        "home",
        None,
    ]
    assert [p.consent(v, "c") for v in (True, False, None, "Y", "no", "")] == [
        True,
        False,
        None,
        True,
        False,
        None,
    ]
    with pytest.raises(MalformedRecord, match=r"customer\.sms_consent"):
        p.consent("maybe", "customer.sms_consent")


def test_content_hash_ignores_updated_at_and_sees_everything_else() -> None:
    record = normalise_bridge_record(bridge_record())
    later = replace(record, updated_at=record.opened_at + timedelta(hours=5))
    assert later.content_hash() == record.content_hash()
    assert replace(record, raw_status="CLOSED").content_hash() != record.content_hash()
    assert record.promised_at is not None
    moved = replace(record, promised_at=record.promised_at + timedelta(minutes=30))
    assert moved.content_hash() != record.content_hash()


def test_content_hash_is_the_same_instant_in_any_zone() -> None:
    record = normalise_bridge_record(bridge_record())
    pacific = replace(record, opened_at=record.opened_at.astimezone(timezone(timedelta(hours=-8))))
    assert pacific.content_hash() == record.content_hash()


def test_content_hash_is_stable_across_processes() -> None:
    script = (
        "from integrations.dms.rest import normalise_bridge_record;"
        "from tests.integrations.dms.conftest import bridge_record;"
        "print(normalise_bridge_record(bridge_record()).content_hash())"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert other.stdout.strip() == normalise_bridge_record(bridge_record()).content_hash()


def test_dms_error_names_rooftop_and_kind() -> None:
    error = DmsError(
        "authentication failed: 401 invalid_client", rooftop_slug="bayview-toyota", kind="cdk"
    )
    assert str(error) == "rooftop 'bayview-toyota' (cdk): authentication failed: 401 invalid_client"


def test_vendor_dates_and_times_are_read_tolerantly_in_the_rooftops_zone() -> None:
    la = ZoneInfo("America/Los_Angeles")
    expected = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 16:30 PST
    for day, clock in [
        ("2026-11-22", "16:30"),
        ("20261122", "1630"),
        ("11/22/2026", "16:30:00"),
    ]:
        assert p.local_date_time(day, clock, "promised", la) == expected
    assert p.local_date_time("20261122", "639", "t", la) == datetime(
        2026, 11, 22, 14, 39, tzinfo=UTC
    )
    assert p.local_date_time("2026-11-22", "", "promised", la) is None  # a date is no promise
    assert p.local_date("20261122", "closed", la) == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert p.local_date("0", "closed", la) is None
    with pytest.raises(MalformedRecord, match="promised: not a date and time"):
        p.local_date_time("tomorrow", "4pm", "promised", la)


def test_line_codes_go_through_the_dealers_map_and_unmapped_reads_as_approved() -> None:
    mapping: dict[str, p.LineStatus] = {"D": "declined", "C": "completed"}
    assert [p.line_status(code, mapping, "s") for code in ("d", "C", "I", "", None)] == [
        "declined",
        "completed",
        "approved",
        "approved",
        "approved",
    ]
