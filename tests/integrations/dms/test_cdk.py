"""The CDK (Fortellis Service Repair Order v1) adapter against its fake, over real HTTP:
the token flow, long-running operations, deltas, and the faults around them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.dms.base import DmsAuthError, DmsUnavailable, MalformedRecord, RawRecord
from integrations.dms.cdk import CdkAdapter
from integrations.dms.fakes import cdk_fake
from integrations.dms.fakes.cdk_fake import CdkFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.http import RetryPolicy
from integrations.dms.registry import build_adapter
from tests.integrations.dms.conftest import Sleeps
from tests.integrations.dms.vendor_support import Clock, source_json

NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


def cdk_record(ro_number: str = "6001", **overrides: Any) -> dict[str, Any]:
    """The sourced C1 record (``sources/fortellis_sro_v1_result.json``) under another number."""
    record: dict[str, Any] = copy.deepcopy(source_json("fortellis_sro_v1_result.json")["data"][0])
    record["roNumber"] = ro_number
    record.update(overrides)
    return record


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[CdkFake, FakeServer]]:
    fake = CdkFake()
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[CdkFake, FakeServer]) -> CdkFake:
    fake = served[0]
    fake.records.clear()
    fake.changed_at.clear()
    fake.faults.clear()
    fake.expire_tokens()
    fake.tokens_issued = 0
    fake.request_ids.clear()
    fake.queries.clear()
    fake.polls_until_complete = 2
    fake.check_status_after = 30
    fake.operation_status = "complete"
    fake.expire_results = 0
    fake.revoke_tokens_after = None
    fake.calls = 0
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def _adapter(server: FakeServer, clock: Clock, retry: RetryPolicy, **overrides: Any) -> CdkAdapter:
    settings = {
        "base_url": server.url + cdk_fake.BASE_PATH,
        "token_url": server.url + cdk_fake.TOKEN_PATH,
        "client_id": "pitwall",
        "client_secret": "secret",
        "subscription_id": "sub-1",
        "line_status_map": {"C": "completed", "D": "declined"},
        **overrides,
    }
    adapter = build_adapter(
        "cdk", settings, rooftop_slug="bayview-toyota", timezone="America/Los_Angeles",
        clock=clock, retry=retry,
    )  # fmt: skip
    assert isinstance(adapter, CdkAdapter)
    return adapter


@pytest.fixture
def adapter(
    served: tuple[CdkFake, FakeServer], clock: Clock, fast_retry: RetryPolicy
) -> Iterator[CdkAdapter]:
    adapter = _adapter(served[1], clock, fast_retry)
    yield adapter
    adapter.close()


def _numbers(adapter: CdkAdapter, since: datetime | None) -> list[str | None]:
    return [r.ro_number for page in adapter.fetch_changed(since) for r in page.records]


def test_a_202_completes_after_two_status_polls_honouring_check_status_after(
    fake: CdkFake, adapter: CdkAdapter, sleeps: Sleeps
) -> None:
    fake.put(cdk_record("7001"), cdk_record("7002"))
    pages = list(adapter.fetch_changed(None))
    assert [r.ro_number for page in pages for r in page.records] == ["7001", "7002"]
    assert sleeps == [30.0, 30.0]  # checkStatusAfterSeconds, twice, then the result
    assert [name for name, _ in fake.queries] == ["open"]
    assert pages[-1].watermark == NOW


def test_a_long_wait_is_capped_and_a_null_wait_has_a_default(
    served: tuple[CdkFake, FakeServer], fake: CdkFake, clock: Clock, fast_retry: RetryPolicy,
    sleeps: Sleeps,
) -> None:  # fmt: skip
    adapter = _adapter(served[1], clock, fast_retry, max_wait_seconds=10)
    fake.check_status_after = 600
    list(adapter.fetch_changed(None))
    fake.check_status_after = None
    list(adapter.fetch_changed(None))
    assert sleeps == [10.0, 10.0, 5.0, 5.0]


def test_deltas_read_open_then_closed_over_since_to_now(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.check_status_after = 0
    fake.put(cdk_record("6001"), at=NOW - timedelta(hours=2))
    fake.put(cdk_record("6002"), at=NOW - timedelta(minutes=30))
    fake.put(cdk_record("6003", closedDate="2026-11-22"), at=NOW - timedelta(minutes=20))
    fake.put(cdk_record("6004"), at=NOW + timedelta(minutes=1))  # after "now"
    pages = list(adapter.fetch_changed(NOW - timedelta(hours=1)))
    assert [[r.ro_number for r in page.records] for page in pages] == [["6002"], ["6003"]]
    assert [page.watermark for page in pages] == [None, NOW]  # only the last page moves it
    assert [(name, params) for name, params in fake.queries] == [
        ("open/delta", {"startDate": "2026-11-22T19:00:00Z", "endDate": "2026-11-22T20:00:00Z"}),
        ("closed/delta", {"startDate": "2026-11-22T19:00:00Z", "endDate": "2026-11-22T20:00:00Z"}),
    ]


def test_a_gap_longer_than_the_delta_window_reads_the_open_set(
    fake: CdkFake, adapter: CdkAdapter
) -> None:
    fake.check_status_after = 0
    fake.put(cdk_record("6001"), at=NOW - timedelta(days=5))
    assert _numbers(adapter, NOW - timedelta(hours=48)) == ["6001"]
    assert [name for name, _ in fake.queries] == ["open"]


def test_the_token_asks_for_scope_anonymous_and_is_kept_until_near_expiry(
    fake: CdkFake, adapter: CdkAdapter, clock: Clock
) -> None:
    fake.check_status_after = 0
    list(adapter.fetch_changed(None))
    list(adapter.fetch_changed(None))
    assert fake.tokens_issued == 1
    clock.now += timedelta(seconds=3600 - 200)  # inside the 5-minute margin
    list(adapter.fetch_changed(None))
    assert fake.tokens_issued == 2


def test_a_token_that_expires_mid_poll_is_refreshed_once_and_the_poll_completes(
    fake: CdkFake, adapter: CdkAdapter
) -> None:
    fake.check_status_after = 0
    fake.put(cdk_record("6001"))
    fake.revoke_tokens_after = 2  # the query and one status poll, then 401
    assert _numbers(adapter, None) == ["6001"]
    assert fake.tokens_issued == 2


def test_every_call_has_its_own_request_id(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.check_status_after = 0
    list(adapter.fetch_changed(None))
    assert len(fake.request_ids) == 4  # query, two status polls, result
    assert len(set(fake.request_ids)) == 4


def test_an_operation_in_error_is_unavailable_until_the_next_poll(
    fake: CdkFake, adapter: CdkAdapter
) -> None:
    fake.check_status_after = 0
    fake.operation_status = "error"
    with pytest.raises(DmsUnavailable, match=r"\(cdk\): operation op-\d+ ended in error"):
        list(adapter.fetch_changed(None))


def test_an_expired_result_is_asked_again_once(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.check_status_after = 0
    fake.put(cdk_record("6001"))
    fake.expire_results = 1
    assert _numbers(adapter, None) == ["6001"]
    assert [name for name, _ in fake.queries] == ["open", "open"]
    fake.expire_results = 2
    with pytest.raises(DmsUnavailable, match="result expired twice"):
        list(adapter.fetch_changed(None))


def test_a_wrong_secret_fails_the_token_request_without_retrying(
    served: tuple[CdkFake, FakeServer],
    fake: CdkFake,
    clock: Clock,
    fast_retry: RetryPolicy,
    sleeps: Sleeps,
) -> None:
    adapter = _adapter(served[1], clock, fast_retry, client_secret="wrong-secret-value")
    with pytest.raises(DmsAuthError) as caught:
        adapter.check()
    message = str(caught.value)
    assert message == (
        "rooftop 'bayview-toyota' (cdk): token request failed: "
        "authentication failed: 401 invalid_client"
    )
    assert "wrong-secret-value" not in message and sleeps == []


def test_a_subscription_the_dealer_did_not_activate_is_named_by_check(
    served: tuple[CdkFake, FakeServer], fake: CdkFake, clock: Clock, fast_retry: RetryPolicy
) -> None:
    adapter = _adapter(served[1], clock, fast_retry, subscription_id="someone-else")
    with pytest.raises(DmsAuthError, match=r"lookup GET .*/open/delta failed: .*403 unknown"):
        adapter.check()


def test_429_and_5xx_are_retried_honouring_retry_after(
    fake: CdkFake, adapter: CdkAdapter, sleeps: Sleeps
) -> None:
    fake.check_status_after = 0
    fake.put(cdk_record("6001"))
    fake.faults.add(429, retry_after=3)
    fake.faults.add(503)
    assert _numbers(adapter, None) == ["6001"]
    assert sleeps[:2] == [3.0, 1.0]


def test_promised_time_is_local_on_both_sides_of_dst(adapter: CdkAdapter) -> None:
    summer = adapter.normalise(RawRecord(payload=cdk_record(promisedDate="2026-07-01")))
    winter = adapter.normalise(RawRecord(payload=cdk_record(promisedDate="12/01/2026")))
    assert summer.promised_at == datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # PDT
    assert winter.promised_at == datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # PST
    no_time = adapter.normalise(RawRecord(payload=cdk_record(promisedTime="")))
    assert no_time.promised_at is None  # a date alone is no promise time


def test_an_unmapped_line_status_reads_as_approved_and_a_closed_ro_has_its_date(
    adapter: CdkAdapter,
) -> None:
    record = cdk_record(closedDate="2026-11-23")
    record["operations"][1]["line"]["statusCode"] = "Q"
    ro = adapter.normalise(RawRecord(payload=record))
    assert [li.status for li in ro.lines] == ["completed", "approved"]
    assert ro.closed_at == datetime(2026, 11, 23, 8, tzinfo=UTC)


def test_the_technicians_cause_or_story_is_each_lines_note(adapter: CdkAdapter) -> None:
    """C1's line.cause (else storyText) is the note; the sourced record leaves both empty."""
    assert [li.note for li in adapter.normalise(RawRecord(payload=cdk_record())).lines] == [
        None,
        None,
    ]
    record = cdk_record()
    record["operations"][0]["line"]["cause"] = "Pads at 3 mm"
    record["operations"][1]["line"]["storyText"] = "Road tested, pulls right"
    ro = adapter.normalise(RawRecord(payload=record))
    assert [li.note for li in ro.lines] == ["Pads at 3 mm", "Road tested, pulls right"]


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"roNumber": None}, "roNumber: missing"),
        ({"openDate": ""}, "openDate: missing"),
        ({"promisedTime": "4pm"}, "promisedDate/promisedTime: not a date and time: "),
        ({"customer": {"name1": "X"}}, "customer.customerId: missing"),
        ({"operations": [{"line": {"lineCode": "A", "laborOperations": [{"opCode": "X",
          "sale": "ten"}]}}]}, "operations[0].line.laborOperations[0].sale: not an amount"),
    ],
)  # fmt: skip
def test_malformed_records_name_the_field(
    adapter: CdkAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(RawRecord(payload=cdk_record(**override)))
    assert caught.value.reason.startswith(reason)


def test_there_is_no_lookup_by_number(adapter: CdkAdapter) -> None:
    assert adapter.fetch_one("6001") is None
