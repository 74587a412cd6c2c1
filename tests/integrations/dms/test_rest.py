"""The REST bridge adapter against the bridge fake, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.dms.base import (
    DmsAuthError,
    DmsUnavailable,
    MalformedRecord,
    RawRecord,
    lines_content,
)
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.http import RetryPolicy
from integrations.dms.registry import build_adapter
from integrations.dms.rest import RestBridgeAdapter
from tests.integrations.dms.conftest import Sleeps, bridge_record


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RestBridgeFake, FakeServer]]:
    fake = RestBridgeFake(page_size=3)
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[RestBridgeFake, FakeServer]) -> RestBridgeFake:
    fake = served[0]
    fake.records.clear()
    fake.faults.clear()
    fake.requests.clear()
    fake.token = "bridge-token"
    return fake


@pytest.fixture
def adapter(
    served: tuple[RestBridgeFake, FakeServer], fast_retry: RetryPolicy
) -> Iterator[RestBridgeAdapter]:
    adapter = RestBridgeAdapter(
        base_url=served[1].url,
        token="bridge-token",
        rooftop_slug="bayview-toyota",
        retry=fast_retry,
    )
    yield adapter
    adapter.close()


def _updated(n: int) -> str:
    return f"2026-11-22T17:{n:02d}:00Z"


def test_pages_until_next_cursor_is_null(fake: RestBridgeFake, adapter: RestBridgeAdapter) -> None:
    fake.put(*(bridge_record(f"R{1000 + n}", updated_at=_updated(n)) for n in range(8)))
    pages = list(adapter.fetch_changed(None))
    assert [len(page.records) for page in pages] == [3, 3, 2]
    numbers = [r.ro_number for page in pages for r in page.records]
    assert numbers == [f"R{1000 + n}" for n in range(8)]
    assert all(page.ack is None for page in pages)


def test_updated_since_is_sent_as_utc_z_and_filters(
    fake: RestBridgeFake, adapter: RestBridgeAdapter
) -> None:
    fake.put(*(bridge_record(f"R{1000 + n}", updated_at=_updated(n)) for n in range(5)))
    since = datetime(2026, 11, 22, 17, 2, tzinfo=UTC)
    records = [r for page in adapter.fetch_changed(since) for r in page.records]
    assert [r.ro_number for r in records] == ["R1003", "R1004"]
    assert fake.requests[0]["updated_since"] == "2026-11-22T17:02:00Z"


def test_without_since_only_open_ros(fake: RestBridgeFake, adapter: RestBridgeAdapter) -> None:
    fake.put(bridge_record("R1"), bridge_record("R2", closed_at="2026-11-22T23:00:00Z"))
    assert [r.ro_number for p in adapter.fetch_changed(None) for r in p.records] == ["R1"]


def test_normalises_the_contract_example(fake: RestBridgeFake, adapter: RestBridgeAdapter) -> None:
    fake.put(bridge_record())
    (page,) = adapter.fetch_changed(None)
    ro = adapter.normalise(page.records[0])
    assert ro.raw_status == "READY"
    assert ro.promised_at == datetime(2026, 11, 22, 22, tzinfo=UTC)
    assert ro.customer is not None and ro.customer.phones[0].number == "(415) 555-0142"
    assert (ro.customer.sms_consent, ro.customer.marketing_consent) == (True, False)
    assert [(line.op_code, line.amount_cents, line.status) for line in ro.lines] == [
        ("OILCHG", 8995, "approved"),
        ("BRKPAD", 41200, "declined"),
    ]


def test_absent_consent_stays_unknown(adapter: RestBridgeAdapter) -> None:
    record = bridge_record()
    del record["customer"]["sms_consent"], record["customer"]["marketing_consent"]
    ro = adapter.normalise(_raw(record))
    assert ro.customer is not None
    assert (ro.customer.sms_consent, ro.customer.marketing_consent) == (None, None)


def test_a_lines_optional_note_is_read_and_its_absence_hashes_as_before(
    adapter: RestBridgeAdapter,
) -> None:
    plain = adapter.normalise(_raw(bridge_record()))
    record = bridge_record()
    record["lines"][1]["note"] = "Pads at 3 mm"
    noted = adapter.normalise(_raw(record))
    assert [line.note for line in plain.lines] == [None, None]
    assert [line.note for line in noted.lines] == [None, "Pads at 3 mm"]
    assert noted.content_hash() != plain.content_hash()
    # A line without a note hashes as it did before notes existed: no RO looks changed on
    # the first poll after an upgrade (the tuple is the one lines_content always made).
    assert lines_content(plain.lines)[1] == ("B", "BRKPAD", "Front brake pads", 41200, "declined")


def _raw(record: dict[str, Any]) -> RawRecord:
    return RawRecord(payload=record, ro_number=str(record.get("ro_number")))


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"promised_at": "tomorrow"}, "promised_at: not an ISO 8601 time: 'tomorrow'"),
        ({"opened_at": None}, "opened_at: missing"),
        ({"status": ""}, "status: missing"),
        (
            {"lines": [{"line": "A", "op_code": "X", "status": "approved", "amount": "12,34"}]},
            "lines[0].amount: not an amount: '12,34'",
        ),
        (
            {"lines": [{"line": "A", "op_code": "X", "status": "maybe", "amount": "1.00"}]},
            "lines[0].status: unknown line status 'maybe'",
        ),
        ({"vehicle": {"year": "new"}}, "vehicle.year: not a whole number: 'new'"),
        (
            {
                "lines": [
                    {
                        "line": "A",
                        "op_code": "X",
                        "status": "approved",
                        "amount": "1.00",
                        "note": {"text": "x"},
                    }
                ]
            },
            "lines[0].note: expected text, got {'text': 'x'}",
        ),
    ],
)
def test_malformed_records_name_the_field(
    adapter: RestBridgeAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(_raw(bridge_record(**override)))
    assert caught.value.reason == reason


def test_a_wrong_token_fails_at_once_naming_rooftop_and_kind(
    fake: RestBridgeFake, adapter: RestBridgeAdapter, sleeps: Sleeps
) -> None:
    fake.token = "rotated"
    with pytest.raises(DmsAuthError) as caught:
        adapter.check()
    message = str(caught.value)
    assert message.startswith("rooftop 'bayview-toyota' (rest): authentication failed: 401")
    assert len(fake.requests) == 1 and sleeps == []


def test_5xx_and_429_are_retried_briefly(
    fake: RestBridgeFake, adapter: RestBridgeAdapter, sleeps: Sleeps
) -> None:
    fake.put(bridge_record())
    fake.faults.add(503)
    fake.faults.add(429, retry_after=2)
    records = [r for p in adapter.fetch_changed(None) for r in p.records]
    assert len(records) == 1
    assert sleeps == [0.5, 2.0]  # exponential first, then the server's Retry-After


def test_gives_up_after_bounded_attempts(
    fake: RestBridgeFake, adapter: RestBridgeAdapter, sleeps: Sleeps
) -> None:
    fake.faults.add(502, times=10)
    with pytest.raises(DmsUnavailable, match=r"rooftop 'bayview-toyota' \(rest\): gave up"):
        list(adapter.fetch_changed(None))
    assert len(fake.requests) == 4 and len(sleeps) == 3


def test_retry_after_beyond_the_budget_fails_now(
    fake: RestBridgeFake, adapter: RestBridgeAdapter, sleeps: Sleeps
) -> None:
    fake.faults.add(429, retry_after=600)
    with pytest.raises(DmsUnavailable, match="Retry-After 600s"):
        adapter.check()
    assert sleeps == []


def test_unreachable_bridge_is_unavailable(sleeps: Sleeps) -> None:
    adapter = build_adapter(
        "rest",
        {"base_url": "http://127.0.0.1:9", "token": "t"},
        rooftop_slug="bayview-toyota",
        timezone="America/Los_Angeles",
        retry=RetryPolicy(attempts=2, sleep=sleeps),
    )
    with pytest.raises(DmsUnavailable, match="rooftop 'bayview-toyota' \\(rest\\): cannot reach"):
        adapter.check()
    assert len(sleeps) == 1


def test_fetch_one(fake: RestBridgeFake, adapter: RestBridgeAdapter) -> None:
    fake.put(bridge_record("R77"))
    found = adapter.fetch_one("R77")
    assert found is not None and found.ro_number == "R77"
    assert adapter.fetch_one("R78") is None
