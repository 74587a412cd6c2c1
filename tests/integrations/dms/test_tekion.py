"""The Tekion adapter against its fake: token flow with refresh, headers, the modifiedTime
search with page tokens (and split windows when a token drifts), pacing and quota."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.dms.base import DmsAuthError, DmsUnavailable, MalformedRecord, RawRecord
from integrations.dms.fakes import tekion_fake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.fakes.tekion_fake import TekionFake
from integrations.dms.http import RetryPolicy
from integrations.dms.pacing import TokenBucket
from integrations.dms.registry import build_adapter
from integrations.dms.tekion import TekionAdapter
from tests.integrations.dms.conftest import Sleeps
from tests.integrations.dms.vendor_support import Clock, tekion_jobs, tekion_ro

NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
T0 = int(NOW.timestamp() * 1000) - 3_600_000  # an hour ago, epoch ms


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TekionFake, FakeServer]]:
    fake = TekionFake()
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[TekionFake, FakeServer]) -> TekionFake:
    fake = served[0]
    for table in (fake.records, fake.jobs, fake.customers, fake.tokens):
        table.clear()
    fake.faults.clear()
    fake.bodies.clear()
    fake.calls = 0
    fake.tokens_issued = 0
    fake.drift_once = False
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def _adapter(
    server: FakeServer, clock: Clock, retry: RetryPolicy, **overrides: Any
) -> TekionAdapter:
    settings = {
        "base_url": server.url + tekion_fake.BASE_PATH,
        "app_id": "pitwall-app",
        "secret_key": "secret",
        "dealer_id": "techmotors_4_0",
        "line_status_map": {"COMPLETED": "completed", "DECLINED": "declined"},
        **overrides,
    }
    adapter = build_adapter(
        "tekion", settings, rooftop_slug="bayview-toyota", timezone="America/Los_Angeles",
        clock=clock, retry=retry,
    )  # fmt: skip
    assert isinstance(adapter, TekionAdapter)
    return adapter


@pytest.fixture
def adapter(
    served: tuple[TekionFake, FakeServer], clock: Clock, fast_retry: RetryPolicy
) -> TekionAdapter:
    return _adapter(served[1], clock, fast_retry)


def _put(fake: TekionFake, number: str, modified: int) -> None:
    fake.put(
        tekion_ro(number, modified),
        jobs=tekion_jobs(),
        customer={"id": f"rc-{number}", "firstName": "Ana", "phone": "+14155550142"},
    )


def test_the_search_is_on_modified_time_twenty_to_a_page_with_page_tokens(
    fake: TekionFake, adapter: TekionAdapter
) -> None:
    for n in range(45):
        _put(fake, f"R{n:02d}", T0 + n)
    pages = list(adapter.fetch_changed(NOW - timedelta(hours=2)))
    assert [len(page.records) for page in pages] == [20, 20, 5]
    assert [page.watermark for page in pages] == [None, None, NOW]
    start, end = int((NOW - timedelta(hours=2)).timestamp() * 1000), int(NOW.timestamp() * 1000)
    assert fake.bodies[0] == {
        "pageSize": 20,
        "filters": [
            {"field": "modifiedTime", "operator": "GTE", "values": [start]},
            {"field": "modifiedTime", "operator": "LTE", "values": [end]},
        ],
    }
    assert "paginationToken" in fake.bodies[1]
    first = adapter.normalise(pages[0].records[0])
    assert first.customer is not None and first.customer.first_name == "Ana"
    assert [li.status for li in first.lines] == ["completed", "declined"]


def test_a_page_token_that_drifts_out_of_the_window_splits_the_window(
    fake: TekionFake, adapter: TekionAdapter
) -> None:
    for n in range(30):
        _put(fake, f"R{n:02d}", T0 + n * 1000)
    _put(fake, "LATE", int(NOW.timestamp() * 1000) + 3_600_000)  # after the window
    fake.drift_once = True
    numbers = [
        r.ro_number
        for page in adapter.fetch_changed(NOW - timedelta(hours=2))
        for r in page.records
    ]
    assert "LATE" not in numbers
    assert {f"R{n:02d}" for n in range(30)} <= set(numbers)


def test_the_token_is_kept_refreshed_before_expiry_and_once_on_a_401(
    fake: TekionFake, adapter: TekionAdapter, clock: Clock
) -> None:
    clock.now = datetime.now(UTC)  # the fake's expire_on is real time plus expire_in
    adapter.fetch_one("nothing")
    adapter.fetch_one("nothing")
    assert fake.tokens_issued == 1
    fake.expire_tokens()  # the token expires mid-poll
    adapter.fetch_one("nothing")
    assert fake.tokens_issued == 2
    clock.now += timedelta(seconds=86399 - 200)  # inside the 5-minute margin of expire_on
    adapter.fetch_one("nothing")
    assert fake.tokens_issued == 3


def test_no_more_than_eighteen_tokens_in_fifteen_minutes(
    fake: TekionFake, adapter: TekionAdapter
) -> None:
    for _ in range(18):
        adapter.token.drop()
        adapter.token.get()
    adapter.token.drop()
    with pytest.raises(DmsUnavailable, match="18 tokens asked in 15 minutes"):
        adapter.token.get()


def test_wrong_secret_and_unknown_dealer_are_named(
    served: tuple[TekionFake, FakeServer], fake: TekionFake, clock: Clock, fast_retry: RetryPolicy
) -> None:
    with pytest.raises(DmsAuthError, match=r"\(tekion\): token request failed: authentication"):
        _adapter(served[1], clock, fast_retry, secret_key="not-it-at-all").check()
    with pytest.raises(DmsAuthError, match=r"search POST .*:search failed: .*403"):
        _adapter(served[1], clock, fast_retry, dealer_id="someone-else").check()


def test_overall_quota_429_honours_retry_after(
    fake: TekionFake, adapter: TekionAdapter, sleeps: Sleeps
) -> None:
    _put(fake, "R1", T0)
    fake.faults.add(429, retry_after=3)
    fake.faults.add(503)
    assert (
        len([r for page in adapter.fetch_changed(NOW - timedelta(hours=2)) for r in page.records])
        == 1
    )
    assert sleeps[:2] == [3.0, 1.0]


def test_fetch_one_searches_by_document_number(fake: TekionFake, adapter: TekionAdapter) -> None:
    _put(fake, "R9", T0)
    found = adapter.fetch_one("R9")
    assert found is not None and found.ro_number == "R9"
    assert found.payload["jobs"] == tekion_jobs()
    assert adapter.fetch_one("R10") is None


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"creationTime": "yesterday"}, "creationTime: expected epoch milliseconds"),
        ({"documentNumber": None}, "documentNumber: missing"),
        (
            {
                "jobs": [
                    {"id": "j", "operations": [{"opcode": "X", "labor": {"saleAmount": "89.95"}}]}
                ]
            },
            "jobs[0].operations[0].labor.saleAmount: expected integer cents",
        ),
        ({"jobs": [{"id": "j"}]}, "jobs[0].opcode: missing"),
    ],
)
def test_malformed_records_name_the_field(
    adapter: TekionAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(RawRecord(payload=tekion_ro("R1", T0, **override)))
    assert caught.value.reason.startswith(reason)


class FakeTime:
    """A monotonic clock whose sleep just moves time on."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacing_never_exceeds_1500_calls_in_any_15_minutes() -> None:
    time = FakeTime()
    bucket = TokenBucket(calls=1500, per_seconds=900, burst=50, clock=time.clock, sleep=time.sleep)
    stamps = []
    for _ in range(4000):
        bucket.acquire()
        stamps.append(time.now)
    assert stamps[49] == 0.0 and stamps[50] > 0  # a burst, then paced
    start = 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= 900:
            start += 1
        assert end - start + 1 <= 1500


def test_the_adapter_paces_every_call(
    fake: TekionFake, served: tuple[TekionFake, FakeServer], clock: Clock
) -> None:
    time = FakeTime()
    pacer = TokenBucket(calls=10, per_seconds=900, burst=2, clock=time.clock, sleep=time.sleep)
    adapter = TekionAdapter(
        app_id="pitwall-app", secret_key="secret", dealer_id="techmotors_4_0",
        rooftop_slug="bayview-toyota", base_url=served[1].url + tekion_fake.BASE_PATH,
        clock=clock, retry=RetryPolicy(sleep=time.sleep), pacer=pacer,
    )  # fmt: skip
    adapter.fetch_one("R1")
    adapter.fetch_one("R2")
    adapter.fetch_one("R3")
    assert fake.calls == 3
    assert time.now == pytest.approx(900 / 8)  # two calls from the burst, one paced
