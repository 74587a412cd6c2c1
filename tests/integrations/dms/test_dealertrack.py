"""The Dealertrack OpenTrack adapter against its fake: WS-Security, the dealer block,
ModifiedAfter with full reads between, closed ROs, faults, hostile XML, and writing
customers' answers back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.dms.base import (
    DmsAuthError,
    DmsError,
    LineAnswer,
    MalformedRecord,
    RawRecord,
    WritesLineAnswers,
)
from integrations.dms.dealertrack import DealertrackAdapter
from integrations.dms.dealertrack.soap import parse_xml
from integrations.dms.fakes.dealertrack_fake import PATH, DealertrackFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.http import RetryPolicy
from integrations.dms.registry import build_adapter, validate_settings
from tests.integrations.dms.conftest import Sleeps
from tests.integrations.dms.vendor_support import Clock, opentrack_line, opentrack_row

NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[DealertrackFake, FakeServer]]:
    fake = DealertrackFake()
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[DealertrackFake, FakeServer]) -> DealertrackFake:
    fake = served[0]
    fake.open_orders.clear()
    fake.closed_orders.clear()
    fake.faults.clear()
    fake.raw_answer = None
    fake.raw_answers.clear()
    fake.calls.clear()
    fake.updates.clear()
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def _adapter(
    server: FakeServer, clock: Clock, retry: RetryPolicy, **overrides: Any
) -> DealertrackAdapter:
    settings = {
        "base_url": server.url + PATH,
        "enterprise_code": "ZE",
        "company_number": "ZE7",
        "server_name": "ot-fake",
        "username": "pitwall",
        "password": "secret",
        "line_status_map": {"D": "declined"},
        **overrides,
    }
    adapter = build_adapter(
        "dealertrack",
        settings,
        rooftop_slug="bayview-toyota",
        timezone="America/Los_Angeles",
        clock=clock,
        retry=retry,
    )
    assert isinstance(adapter, DealertrackAdapter)
    return adapter


@pytest.fixture
def adapter(
    served: tuple[DealertrackFake, FakeServer], clock: Clock, fast_retry: RetryPolicy
) -> DealertrackAdapter:
    return _adapter(served[1], clock, fast_retry)


def test_modified_after_between_full_reads_and_snapshot_only_on_a_full_read(
    fake: DealertrackFake, adapter: DealertrackAdapter, clock: Clock
) -> None:
    fake.put(opentrack_row("80001", LastModified="2026-11-22T18:00:00Z"))
    fake.put(opentrack_row("80002", LastModified="2026-11-22T19:55:00Z"))
    (first,) = list(adapter.fetch_changed(NOW - timedelta(hours=3)))
    assert adapter.snapshot is True  # a process's first read is a full one
    assert [r.ro_number for r in first.records] == ["80001", "80002"]
    assert first.watermark == NOW
    clock.now += timedelta(minutes=1)
    (second,) = list(adapter.fetch_changed(NOW))
    assert adapter.snapshot is False
    assert [r.ro_number for r in second.records] == ["80002"]  # modified after 19:50
    clock.now += timedelta(minutes=60)
    list(adapter.fetch_changed(NOW))
    assert adapter.snapshot is True
    parms = [parms for _, parms in fake.calls]
    assert parms == [{}, {"ModifiedAfter": "2026-11-22T19:50:00Z"}, {}]


def test_the_dealer_block_and_ws_security_are_what_the_fake_checks(
    served: tuple[DealertrackFake, FakeServer],
    fake: DealertrackFake,
    clock: Clock,
    fast_retry: RetryPolicy,
    sleeps: Sleeps,
) -> None:
    wrong_password = _adapter(served[1], clock, fast_retry, password="not-the-password")
    with pytest.raises(DmsAuthError) as caught:
        wrong_password.check()
    assert str(caught.value).startswith(
        "rooftop 'bayview-toyota' (dealertrack): OpenRepairOrderLookup at "
    )
    assert "soap:Client Authentication failed" in str(caught.value)
    assert "not-the-password" not in str(caught.value) and sleeps == []
    other_company = _adapter(served[1], clock, fast_retry, company_number="XX1")
    with pytest.raises(DmsAuthError, match="error 311, the dealer has not granted"):
        other_company.check()


def test_fetch_one_asks_the_open_list_then_the_closed_details(
    fake: DealertrackFake, adapter: DealertrackAdapter
) -> None:
    fake.put(opentrack_row("80001"))
    found = adapter.fetch_one("80001")
    assert found is not None and found.payload["RepairOrderNumber"] == "80001"
    fake.close(
        "80001",
        {
            "RepairOrderNumber": "80001",
            "CustomerKey": "1000267",
            "CustomerName": "DOE, JOHN",
            "OpenDate": "20261120",
            "CloseDate": "20261122",
            "FinalCloseDate": "20261122",
            "VIN": "JHLRD1852VC809994",
            "Details": [
                {
                    "LineNumber": "1",
                    "LaborDetails": [{"LaborOpCode": "OIL", "LaborAmount": "89.95"}],
                },
                {
                    "LineNumber": "2",
                    "LaborDetails": [{"LaborOpCode": "BRAKES", "LaborAmount": "0"}],
                },
            ],
        },
    )
    closed = adapter.fetch_one("80001")
    assert closed is not None
    ro = adapter.normalise(closed)
    assert (ro.raw_status, ro.closed_at) == ("CLOSED", datetime(2026, 11, 22, 8, tzinfo=UTC))
    # Only billed lines: line 2 keeps what Pitwall knew of it (declined stays declined).
    assert [(li.line_code, li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("1", "OIL", 8995, "completed")
    ]
    assert adapter.fetch_one("80999") is None
    assert [op for op, _ in fake.calls][-2:] == [
        "OpenRepairOrderLookup",
        "GetClosedRepairOrderDetails",
    ]


def test_empty_line_status_and_upsell_flag_are_data_and_phone_zero_is_no_phone(
    adapter: DealertrackAdapter,
) -> None:
    details = (
        opentrack_line("1", "OILCHG", "89.95", "C")
        + opentrack_line("2", "BRKPAD", "412", "D")
        + opentrack_line("3", "WIPERS", "42", "")
        + [{"ServiceLineNumber": "4", "LineType": "E", "LineStatus": "", "UpsellFlag": ""}]
    )
    ro = adapter.normalise(
        RawRecord(payload=opentrack_row(TimeIn="639", CustomerPhoneNumber="0", Details=details))
    )
    assert ro.opened_at == datetime(2012, 10, 3, 13, 39, tzinfo=UTC)  # 06:39 PDT
    assert ro.customer is not None and ro.customer.phones == ()
    assert [(li.line_code, li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("1", "OILCHG", 8995, "completed"),
        ("2", "BRKPAD", 41200, "declined"),
        ("3", "WIPERS", 4200, "approved"),
    ]
    assert ro.lines[0].description == "OILCHG requested"


def test_comments_after_the_first_on_a_service_line_are_its_note(
    adapter: DealertrackAdapter,
) -> None:
    details = [
        *opentrack_line("1", "BRKPAD", "412", "D"),
        {"ServiceLineNumber": "1", "LineType": "A", "Comments": "Pads at 3 mm."},
        {"ServiceLineNumber": "1", "LineType": "A", "Comments": "Rotors in spec."},
    ]
    ro = adapter.normalise(RawRecord(payload=opentrack_row(Details=details)))
    (line,) = ro.lines
    assert (line.description, line.note) == ("BRKPAD requested", "Pads at 3 mm. Rotors in spec.")
    plain = adapter.normalise(RawRecord(payload=opentrack_row()))
    assert {li.note for li in plain.lines} <= {None}


def test_local_times_convert_to_utc_across_a_dst_change(adapter: DealertrackAdapter) -> None:
    before = adapter.normalise(RawRecord(payload=opentrack_row(PromisedDateTime="202610311630")))
    after = adapter.normalise(RawRecord(payload=opentrack_row(PromisedDateTime="202611021630")))
    assert before.promised_at == datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    assert after.promised_at == datetime(2026, 11, 3, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"ROStatus": ""}, "ROStatus: missing"),
        ({"PromisedDateTime": "tomorrow"}, "PromisedDateTime: not a YYYYMMDDHHMM time"),
        ({"OpenTransactionDate": ""}, "OpenTransactionDate: missing"),
        ({"Details": opentrack_line("1", "X", "abc")}, "Details[1].NetPrice: not an amount"),
    ],
)
def test_malformed_records_name_the_field(
    adapter: DealertrackAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(RawRecord(payload=opentrack_row(**override)))
    assert caught.value.reason.startswith(reason)


def test_server_faults_are_retried(
    fake: DealertrackFake, adapter: DealertrackAdapter, sleeps: Sleeps
) -> None:
    fake.put(opentrack_row("80001"))
    fake.faults.add(500, times=2)
    assert len(next(adapter.fetch_changed(None)).records) == 1
    assert len(fake.calls) == 3 and sleeps == [0.5, 1.0]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<OpenRepairOrderLookupResult><Result><RepairOrderNumber>&lol3;</RepairOrderNumber></Result>
</OpenRepairOrderLookupResult></soap:Body></soap:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<OpenRepairOrderLookupResult><Result><RepairOrderNumber>&xxe;</RepairOrderNumber></Result>
</OpenRepairOrderLookupResult></soap:Body></soap:Envelope>"""


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


# -- writing customers' answers back: UpdateRepairOrderLines (D1's WSDL) ------------

CODES = {"approved": "A", "declined": "D"}
BRAKES = LineAnswer(line_code="2", op_code="BRKPAD", amount_cents=41200, choice="approved")
WIPERS = LineAnswer(line_code="3", op_code="WIPERS", amount_cents=4200, choice="declined")


@pytest.fixture
def writer(
    served: tuple[DealertrackFake, FakeServer], clock: Clock, fast_retry: RetryPolicy
) -> DealertrackAdapter:
    return _adapter(
        served[1],
        clock,
        fast_retry,
        write_back_codes=CODES,
        line_status_map={"A": "approved", "D": "declined"},
    )


def _open_ro(fake: DealertrackFake) -> None:
    details = (
        opentrack_line("1", "OILCHG", "89.95", "C")
        + opentrack_line("2", "BRKPAD", "412", "")
        + opentrack_line("3", "WIPERS", "42", "")
    )
    fake.put(opentrack_row(Details=details))


def test_answers_are_written_as_the_dealers_codes_and_read_back_on_the_next_poll(
    fake: DealertrackFake, writer: DealertrackAdapter
) -> None:
    _open_ro(fake)
    assert isinstance(writer, WritesLineAnswers) and writer.writes_answers
    writer.write_line_answers("6000082", [BRAKES, WIPERS])
    ((number, items),) = fake.updates
    assert number == "6000082"
    assert [
        (i["ServiceLineNumber"], i["LaborOpCode"], i["LineStatus"], i["ActualRetailAmount"])
        for i in items
    ] == [("2", "BRKPAD", "A", "412.00"), ("3", "WIPERS", "D", "42.00")]
    record = writer.fetch_one("6000082")
    assert isinstance(record, RawRecord)
    ro = writer.normalise(record)
    assert [(li.line_code, li.status) for li in ro.lines] == [
        ("1", "completed"),
        ("2", "approved"),
        ("3", "declined"),
    ]


def test_the_request_follows_the_wsdl_sequence_with_nil_where_required(
    fake: DealertrackFake, writer: DealertrackAdapter
) -> None:
    _open_ro(fake)
    seen: list[bytes] = []
    original = writer.http.request

    def keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["content"])
        return original(*args, **kwargs)

    writer.http.request = keep  # type: ignore[method-assign]
    writer.write_line_answers("6000082", [BRAKES])
    (item,) = [e for e in parse_xml(seen[0]).iter() if e.tag.endswith("}LineItem")]
    names = [child.tag.rsplit("}", 1)[1] for child in item]
    assert names == [
        "LaborOpCode",
        "ServiceLineNumber",
        "LineStatus",
        "LaborHours",
        "ActualRetailAmount",
        "EstimatePrice",
    ]
    nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
    assert item[3].get(nil) == "true" and item[5].get(nil) == "true"


def test_a_failure_names_what_opentrack_refused_and_writes_nothing(
    fake: DealertrackFake, writer: DealertrackAdapter
) -> None:
    _open_ro(fake)
    gone = LineAnswer(line_code="9", op_code="ALIGN", amount_cents=100, choice="approved")
    with pytest.raises(DmsError, match=r"UpdateRepairOrderLines RO 6000082 refused: .*line 9"):
        writer.write_line_answers("6000082", [BRAKES, gone])
    with pytest.raises(DmsError, match="RO 7 is not open"):
        writer.write_line_answers("7", [BRAKES])
    with pytest.raises(DmsError, match="not an OpenTrack ServiceLineNumber"):
        letter = LineAnswer(line_code="B", op_code="X", amount_cents=1, choice="approved")
        writer.write_line_answers("6000082", [letter])
    assert fake.updates == []


def test_without_the_dealers_codes_nothing_is_written(
    served: tuple[DealertrackFake, FakeServer], clock: Clock, fast_retry: RetryPolicy
) -> None:
    plain = _adapter(served[1], clock, fast_retry)
    assert not plain.writes_answers
    with pytest.raises(DmsError, match="write_back_codes is not set"):
        plain.write_line_answers("6000082", [BRAKES])


@pytest.mark.parametrize(
    ("codes", "problem"),
    [
        ({"approved": "A"}, "dms.write_back_codes: expected { approved"),
        ({"approved": "A", "declined": " "}, "dms.write_back_codes.declined: expected a non-empty"),
        ("A", "dms.write_back_codes: expected"),
    ],
)
def test_a_bad_write_back_setting_is_named_at_load(codes: object, problem: str) -> None:
    settings = {
        "enterprise_code": "ZE",
        "company_number": "ZE7",
        "server_name": "s",
        "username": "u",
        "password": "p",
        "write_back_codes": codes,
    }
    (found,) = validate_settings("dealertrack", settings)
    assert found.startswith(problem)
