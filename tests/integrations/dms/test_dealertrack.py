"""The Dealertrack (SOAP) adapter against its fake: snapshots, local times, hostile XML."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.dms.base import DmsAuthError, DmsError, MalformedRecord, RawRecord
from integrations.dms.dealertrack import DealertrackAdapter
from integrations.dms.fakes.dealertrack_fake import DealertrackFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.http import RetryPolicy
from tests.integrations.dms.conftest import Sleeps


def dt_record(ro_number: str = "80001", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "RONumber": ro_number,
        "ROStatus": "2",
        "OpenDateTime": "202611220745",
        "PromisedDateTime": "202611221630",
        "ServiceWriterID": "A9",
        "ServiceWriterName": "Priya Natarajan",
        "CustomerNumber": "DT-77",
        "FirstName": "Wei",
        "LastName": "Chen",
        "HomePhone": "",
        "CellPhone": "4155550144",
        "BusinessPhone": "(650) 555-0150",
        "Email": "wei@example.com",
        "Language": "EN",
        "VIN": "JTDKN3DU0D1234567",
        "Year": "2013",
        "Make": "Toyota",
        "Model": "Prius",
        "MileageIn": "98211",
        "Details": [
            {
                "LineCode": "A",
                "OpCode": "OILCHG",
                "OpDescription": "Oil and filter",
                "LineStatus": "C",
                "UpsellFlag": "N",
                "NetPrice": "89.95",
            },
            {
                "LineCode": "B",
                "OpCode": "BRKPAD",
                "OpDescription": "Front brake pads",
                "LineStatus": "O",
                "UpsellFlag": "Y",
                "NetPrice": "412.00",
            },
            {
                "LineCode": "C",
                "OpCode": "CABINFLT",
                "OpDescription": "Cabin air filter",
                "LineStatus": "A",
                "UpsellFlag": "Y",
                "NetPrice": "64.50",
            },
            {
                "LineCode": "D",
                "OpCode": "ALIGN",
                "OpDescription": "Alignment",
                "LineStatus": "P",
                "UpsellFlag": "Y",
                "NetPrice": "1,149.99",
            },
        ],
    }
    record.update(overrides)
    return record


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[DealertrackFake, FakeServer]]:
    fake = DealertrackFake()
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[DealertrackFake, FakeServer]) -> DealertrackFake:
    fake = served[0]
    fake.records.clear()
    fake.faults.clear()
    fake.raw_answer = None
    fake.calls = 0
    return fake


def _adapter(server: FakeServer, retry: RetryPolicy, **overrides: str) -> DealertrackAdapter:
    options: dict[str, Any] = {
        "base_url": f"{server.url}/opentrack/ServiceAPI",
        "dealer_id": "DT1",
        "username": "pitwall",
        "password": "secret",
        **overrides,
    }
    return DealertrackAdapter(
        rooftop_slug="bayview-toyota", timezone="America/Los_Angeles", retry=retry, **options
    )


@pytest.fixture
def adapter(
    served: tuple[DealertrackFake, FakeServer], fast_retry: RetryPolicy
) -> DealertrackAdapter:
    return _adapter(served[1], fast_retry)


def test_snapshot_returns_every_open_ro(fake: DealertrackFake, adapter: DealertrackAdapter) -> None:
    fake.put(dt_record("80001"), dt_record("80002"), dt_record("80003", ClosedFlag="Y"))
    assert adapter.snapshot is True
    pages = list(adapter.fetch_changed(datetime(2026, 11, 22, tzinfo=UTC)))
    assert [r.ro_number for page in pages for r in page.records] == ["80001", "80002"]


def test_snapshot_normalises_and_hashes_the_same_twice(
    fake: DealertrackFake, adapter: DealertrackAdapter
) -> None:
    fake.put(dt_record())
    first = [adapter.normalise(r) for page in adapter.fetch_changed(None) for r in page.records]
    again = [adapter.normalise(r) for page in adapter.fetch_changed(None) for r in page.records]
    assert [r.content_hash() for r in first] == [r.content_hash() for r in again]
    ro = first[0]
    assert (ro.raw_status, ro.advisor_name, ro.updated_at) == ("2", "Priya Natarajan", None)
    assert ro.customer is not None and ro.customer.language == "en"
    assert [(ph.number, ph.kind) for ph in ro.customer.phones] == [
        ("4155550144", "mobile"),
        ("(650) 555-0150", "work"),
    ]
    assert [(li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("OILCHG", 8995, "completed"),
        ("BRKPAD", 41200, "declined"),
        ("CABINFLT", 6450, "approved"),
        ("ALIGN", 114999, "pending"),
    ]


def test_local_times_convert_to_utc_across_a_dst_change(adapter: DealertrackAdapter) -> None:
    # US DST ended 2026-11-01 at 02:00: 16:30 is UTC-7 on Oct 31 and UTC-8 on Nov 2.
    before = adapter.normalise(RawRecord(payload=dt_record(PromisedDateTime="202610311630")))
    after = adapter.normalise(RawRecord(payload=dt_record(PromisedDateTime="202611021630")))
    assert before.promised_at == datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    assert after.promised_at == datetime(2026, 11, 3, 0, 30, tzinfo=UTC)
    repeated = adapter.normalise(RawRecord(payload=dt_record(OpenDateTime="202611010130")))
    assert repeated.opened_at == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)  # first 01:30 (PDT)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"PromisedDateTime": "tomorrow"}, "PromisedDateTime: not a %Y%m%d%H%M time: 'tomorrow'"),
        ({"ROStatus": "OPEN"}, "ROStatus: expected a numeric code, got 'OPEN'"),
        (
            {"Details": [{"LineCode": "A", "OpCode": "X", "LineStatus": "C", "NetPrice": "abc"}]},
            "Details[0].NetPrice: not an amount: 'abc'",
        ),
        (
            {"Details": [{"LineCode": "A", "OpCode": "X", "LineStatus": "Q"}]},
            "Details[0].LineStatus: unknown line status 'Q'",
        ),
    ],
)
def test_malformed_records_name_the_field(
    adapter: DealertrackAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(RawRecord(payload=dt_record(**override)))
    assert caught.value.reason == reason


def test_fetch_one_uses_the_ro_number_lookup(
    fake: DealertrackFake, adapter: DealertrackAdapter
) -> None:
    fake.put(dt_record("80001"), dt_record("80002", ClosedFlag="Y"))
    found = adapter.fetch_one("80001")
    assert found is not None and found.payload["RONumber"] == "80001"
    assert adapter.fetch_one("80002") is None  # closed: no longer in the open lookup


def test_bad_password_is_a_clear_auth_error(
    served: tuple[DealertrackFake, FakeServer],
    fake: DealertrackFake,
    fast_retry: RetryPolicy,
    sleeps: Sleeps,
) -> None:
    adapter = _adapter(served[1], fast_retry, password="nope")
    with pytest.raises(DmsAuthError) as caught:
        adapter.check()
    assert str(caught.value).startswith(
        "rooftop 'bayview-toyota' (dealertrack): authentication failed: soap:Client"
    )
    assert fake.calls == 1 and sleeps == []


def test_server_faults_are_retried(
    fake: DealertrackFake, adapter: DealertrackAdapter, sleeps: Sleeps
) -> None:
    fake.put(dt_record())
    fake.faults.add(500, times=2)
    assert len(next(adapter.fetch_changed(None)).records) == 1
    assert fake.calls == 3 and sleeps == [0.5, 1.0]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<RepairOrders><RepairOrder><RONumber>&lol3;</RONumber></RepairOrder></RepairOrders>
</soap:Body></soap:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<RepairOrders><RepairOrder><RONumber>&xxe;</RONumber></RepairOrder></RepairOrders>
</soap:Body></soap:Envelope>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
def test_hostile_xml_is_refused_not_expanded(
    fake: DealertrackFake, adapter: DealertrackAdapter, payload: bytes
) -> None:
    fake.raw_answer = payload
    with pytest.raises(DmsError) as caught:
        list(adapter.fetch_changed(None))
    message = str(caught.value)
    assert message.startswith("rooftop 'bayview-toyota' (dealertrack): refused an XML answer")
    assert "root:" not in message and "lollol" not in message


def test_garbage_answer_is_a_clear_error(
    fake: DealertrackFake, adapter: DealertrackAdapter
) -> None:
    fake.raw_answer = b"<html>502 Bad Gateway"
    with pytest.raises(DmsError, match="not well-formed XML"):
        adapter.check()
