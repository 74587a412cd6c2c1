"""The Tekion adapter against the Tekion fake, and its client-side pacing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from integrations.dms.base import DmsAuthError, DmsUnavailable, MalformedRecord, RawRecord
from integrations.dms.fakes.server import FakeServer
from integrations.dms.fakes.tekion_fake import TekionFake
from integrations.dms.http import RetryPolicy
from integrations.dms.pacing import TokenBucket
from integrations.dms.tekion import TekionAdapter
from tests.integrations.dms.conftest import Sleeps

T0 = 1_795_000_000_000  # epoch ms, 2026-11-18


def tekion_record(ro_number: str = "T5001", modified: int = T0, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"ro-{ro_number}",
        "roNumber": ro_number,
        "status": "IN_PROGRESS",
        "createdTime": T0 - 3_600_000,
        "modifiedTime": modified,
        "promisedTime": T0 + 7_200_000,
        "closedTime": None,
        "serviceAdvisor": {"id": "A3", "name": "Marcus Bell"},
        "customer": {
            "id": "TC-9",
            "firstName": "Maria",
            "lastName": "Garcia",
            "phones": [
                {"phoneType": "MOBILE", "number": "+1 415 555 0145"},
                {"phoneType": "WORK", "number": "4155550146"},
            ],
            "email": None,
            "preferredLanguage": "es-US",
            "consents": {"sms": "OPTED_IN", "marketing": "OPTED_OUT"},
        },
        "vehicle": {
            "vin": "4t1bf1fk5cu123456",
            "year": 2012,
            "make": "Toyota",
            "model": "Camry",
            "odometer": {"value": 120500, "unit": "MI"},
        },
        "jobs": [
            {
                "jobNumber": "1",
                "opcode": "OILCHG",
                "description": "Oil change",
                "status": "COMPLETED",
                "customerApproval": "APPROVED",
                "price": {"amount": 8995, "currency": "USD"},
            },
            {
                "jobNumber": "2",
                "opcode": "ALIGN",
                "description": "Alignment",
                "status": "OPEN",
                "customerApproval": "DECLINED",
                "price": {"amount": 14999, "currency": "USD"},
            },
            {
                "jobNumber": "3",
                "opcode": "WIPERS",
                "description": "Wipers",
                "status": "OPEN",
                "customerApproval": "PENDING",
                "price": {"amount": 4200, "currency": "USD"},
            },
        ],
    }
    record.update(overrides)
    return record


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[TekionFake, FakeServer]]:
    fake = TekionFake()
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[TekionFake, FakeServer]) -> TekionFake:
    fake = served[0]
    fake.records.clear()
    fake.faults.clear()
    fake.bodies.clear()
    fake.calls = 0
    return fake


def _adapter(server: FakeServer, retry: RetryPolicy, **kwargs: Any) -> TekionAdapter:
    options: dict[str, Any] = {
        "base_url": server.url,
        "token": "tekion-token",
        "dealer_id": "D100",
        "rooftop_slug": "bayview-toyota",
        "retry": retry,
        "page_size": 2,
        **kwargs,
    }
    return TekionAdapter(**options)


@pytest.fixture
def adapter(served: tuple[TekionFake, FakeServer], fast_retry: RetryPolicy) -> TekionAdapter:
    return _adapter(served[1], fast_retry)


def test_pages_with_page_tokens(fake: TekionFake, adapter: TekionAdapter) -> None:
    fake.put(*(tekion_record(f"T{n}", modified=T0 + n) for n in range(5)))
    pages = list(adapter.fetch_changed(None))
    assert [len(page.records) for page in pages] == [2, 2, 1]
    assert fake.bodies[0]["filter"] == {"openOnly": True}
    assert "pageToken" in fake.bodies[1]


def test_modified_time_filter_is_epoch_ms(fake: TekionFake, adapter: TekionAdapter) -> None:
    fake.put(tekion_record("T1", modified=T0), tekion_record("T2", modified=T0 + 1))
    since = datetime.fromtimestamp(T0 / 1000, UTC)
    numbers = [r.ro_number for page in adapter.fetch_changed(since) for r in page.records]
    assert numbers == ["T2"]
    assert fake.bodies[0]["filter"] == {"modifiedTime": {"gt": T0}}


def test_normalises_tekion_fields(adapter: TekionAdapter) -> None:
    ro = adapter.normalise(RawRecord(payload=tekion_record()))
    assert ro.opened_at == datetime.fromtimestamp((T0 - 3_600_000) / 1000, UTC)
    assert ro.promised_at is not None and ro.promised_at.tzinfo is UTC
    assert ro.customer is not None and ro.customer.language == "es"
    assert [(ph.number, ph.kind) for ph in ro.customer.phones] == [
        ("+1 415 555 0145", "mobile"),
        ("4155550146", "work"),
    ]
    assert (ro.customer.sms_consent, ro.customer.marketing_consent) == (True, False)
    assert ro.vehicle is not None and ro.vehicle.vin == "4T1BF1FK5CU123456"
    assert [(li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("OILCHG", 8995, "completed"),
        ("ALIGN", 14999, "declined"),
        ("WIPERS", 4200, "pending"),
    ]


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"createdTime": "yesterday"}, "createdTime: expected epoch milliseconds, got 'yesterday'"),
        (
            {
                "jobs": [
                    {
                        "jobNumber": "1",
                        "opcode": "X",
                        "customerApproval": "APPROVED",
                        "price": {"amount": "89.95"},
                    }
                ]
            },
            "jobs[0].price.amount: expected integer cents, got '89.95'",
        ),
        (
            {"jobs": [{"jobNumber": "1", "opcode": "X", "customerApproval": "MAYBE"}]},
            "jobs[0].customerApproval: unknown approval 'MAYBE'",
        ),
    ],
)
def test_malformed_tekion_records_name_the_field(
    adapter: TekionAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(RawRecord(payload=tekion_record(**override)))
    assert caught.value.reason == reason


def test_bad_token_is_a_clear_auth_error(
    served: tuple[TekionFake, FakeServer], fake: TekionFake, fast_retry: RetryPolicy
) -> None:
    adapter = _adapter(served[1], fast_retry, token="expired")
    with pytest.raises(DmsAuthError) as caught:
        adapter.check()
    assert str(caught.value) == (
        "rooftop 'bayview-toyota' (tekion): authentication failed: 401 UNAUTHORIZED"
    )
    assert fake.calls == 1


def test_429_honours_retry_after(fake: TekionFake, adapter: TekionAdapter, sleeps: Sleeps) -> None:
    fake.put(tekion_record())
    fake.faults.add(429, retry_after=3)
    fake.faults.add(503)
    assert len([r for page in adapter.fetch_changed(None) for r in page.records]) == 1
    assert sleeps == [3.0, 1.0]


def test_persistent_429_gives_up_within_the_budget(
    fake: TekionFake, adapter: TekionAdapter, sleeps: Sleeps
) -> None:
    fake.faults.add(429, times=10, retry_after=4)
    with pytest.raises(DmsUnavailable, match=r"\(tekion\): gave up retrying: 429"):
        adapter.check()
    assert sum(sleeps) <= 10


def test_fetch_one(fake: TekionFake, adapter: TekionAdapter) -> None:
    fake.put(tekion_record("T9"))
    found = adapter.fetch_one("T9")
    assert found is not None and found.ro_number == "T9"
    assert adapter.fetch_one("T10") is None


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
    assert stamps[-1] == pytest.approx((4000 - 50) / (1450 / 900), rel=1e-6)


def test_adapter_paces_its_calls(fake: TekionFake, served: tuple[TekionFake, FakeServer]) -> None:
    time = FakeTime()
    pacer = TokenBucket(calls=10, per_seconds=900, burst=2, clock=time.clock, sleep=time.sleep)
    adapter = _adapter(served[1], RetryPolicy(sleep=time.sleep), pacer=pacer, page_size=1)
    fake.put(*(tekion_record(f"T{n}", modified=T0 + n) for n in range(4)))
    list(adapter.fetch_changed(None))
    assert fake.calls == 4
    assert time.now == pytest.approx(2 * 900 / 8)  # two calls from the burst, two paced
