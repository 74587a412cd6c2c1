"""The CDK (Fortellis) adapter against the CDK fake, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.dms.base import DmsAuthError, MalformedRecord, RawRecord
from integrations.dms.cdk import CdkAdapter
from integrations.dms.fakes.cdk_fake import CdkFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.http import RetryPolicy
from integrations.dms.registry import build_adapter
from tests.integrations.dms.conftest import Sleeps

NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


def cdk_record(ro_number: str = "6001", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "roNumber": ro_number,
        "openDate": "2026-11-22T07:45:00-08:00",
        "lastModifiedDate": "2026-11-22T19:00:00Z",
        "promisedDate": "2026-11-22",
        "promisedTime": "16:30",
        "serviceAdvisor": {"id": "A7", "name": "Dana Ruiz"},
        "statusCode": "W",
        "statusDesc": "Work in progress",
        "customer": {
            "customerId": "C-4411",
            "name": "LEE, SAM",
            "phoneNumbers": [
                {"type": "Cell", "number": "415.555.0142"},
                {"type": "Home", "number": "(415) 555-0143"},
            ],
            "email": "sam@example.com",
        },
        "vehicle": {
            "vin": "JTMW1RFV5MD012345",
            "year": "2021",
            "make": "Toyota",
            "model": "RAV4",
            "mileageIn": "41,230",
        },
        "operations": [
            {
                "line": {
                    "lineCode": "A",
                    "statusCode": "C",
                    "laborOperations": [
                        {"opCode": "OILCHG", "description": "Oil and filter", "sale": "89.95"}
                    ],
                }
            },
            {
                "line": {
                    "lineCode": "B",
                    "statusCode": "D",
                    "laborOperations": [
                        {"opCode": "BRKPAD", "description": "Front brake pads", "sale": "412.00"}
                    ],
                }
            },
        ],
    }
    record.update(overrides)
    return record


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[CdkFake, FakeServer]]:
    fake = CdkFake(page_size=2)
    with FakeServer(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(served: tuple[CdkFake, FakeServer]) -> CdkFake:
    fake = served[0]
    fake.records.clear()
    fake.faults.clear()
    fake.expire_tokens()
    fake.tokens_issued = 0
    fake.request_ids.clear()
    fake.delta_as_operation = False
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _adapter(server: FakeServer, clock: Clock, retry: RetryPolicy, **overrides: str) -> CdkAdapter:
    settings = {
        "base_url": server.url,
        "token_url": f"{server.url}/oauth2/token",
        "client_id": "pitwall",
        "client_secret": "secret",
        "subscription_id": "sub-1",
        **overrides,
    }
    adapter = build_adapter(
        "cdk",
        settings,
        rooftop_slug="bayview-toyota",
        timezone="America/Los_Angeles",
        clock=clock,
        retry=retry,
    )
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


def test_open_set_is_paged_through_next_links(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.put(
        *(cdk_record(f"60{n:02d}", lastModifiedDate=f"2026-11-22T19:{n:02d}:00Z") for n in range(5))
    )
    fake.put(cdk_record("6099", closeDate="2026-11-22T19:30:00Z"))
    pages = list(adapter.fetch_changed(None))
    assert [len(page.records) for page in pages] == [2, 2, 1]
    assert [r.ro_number for page in pages for r in page.records] == [
        "6000",
        "6001",
        "6002",
        "6003",
        "6004",
    ]


def test_delta_window_runs_from_since_to_now(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.put(
        cdk_record("6001", lastModifiedDate="2026-11-22T18:00:00Z"),
        cdk_record("6002", lastModifiedDate="2026-11-22T19:30:00Z"),
        cdk_record("6003", lastModifiedDate="2026-11-22T20:30:00Z"),
    )  # after "now"
    assert _numbers(adapter, NOW - timedelta(hours=1)) == ["6002"]


def test_a_202_operation_is_polled_until_done(
    fake: CdkFake, adapter: CdkAdapter, sleeps: Sleeps
) -> None:
    fake.delta_as_operation = True
    fake.put(*(cdk_record(f"70{n:02d}") for n in range(3)))
    assert _numbers(adapter, NOW - timedelta(hours=2)) == ["7000", "7001", "7002"]
    assert sleeps == [1.0, 1.0]  # two "running" answers, then the result


def test_token_is_cached_then_refreshed_near_expiry(
    fake: CdkFake, adapter: CdkAdapter, clock: Clock
) -> None:
    adapter.check()
    adapter.check()
    assert fake.tokens_issued == 1
    clock.now += timedelta(seconds=3600 - 30)  # inside the 60 s safety margin
    adapter.check()
    assert fake.tokens_issued == 2


def test_a_revoked_token_is_refreshed_once_on_401(fake: CdkFake, adapter: CdkAdapter) -> None:
    adapter.check()
    fake.expire_tokens()
    adapter.check()
    assert fake.tokens_issued == 2


def test_every_request_has_its_own_request_id(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.put(*(cdk_record(f"60{n:02d}") for n in range(5)))
    list(adapter.fetch_changed(None))
    assert len(fake.request_ids) == 3 and len(set(fake.request_ids)) == 3


def test_bad_client_secret_is_a_clear_auth_error(
    served: tuple[CdkFake, FakeServer],
    fake: CdkFake,
    clock: Clock,
    fast_retry: RetryPolicy,
    sleeps: Sleeps,
) -> None:
    adapter = _adapter(served[1], clock, fast_retry, client_secret="wrong")
    with pytest.raises(DmsAuthError) as caught:
        adapter.check()
    assert str(caught.value) == (
        "rooftop 'bayview-toyota' (cdk): authentication failed: 401 invalid_client"
    )
    assert sleeps == []


def test_wrong_subscription_is_an_auth_error(
    served: tuple[CdkFake, FakeServer], fake: CdkFake, clock: Clock, fast_retry: RetryPolicy
) -> None:
    adapter = _adapter(served[1], clock, fast_retry, subscription_id="someone-else")
    with pytest.raises(DmsAuthError, match="403 unknown Subscription-Id"):
        list(adapter.fetch_changed(None))


def test_5xx_is_retried(fake: CdkFake, adapter: CdkAdapter, sleeps: Sleeps) -> None:
    fake.put(cdk_record())
    adapter.check()
    fake.faults.add(500, times=2)
    assert _numbers(adapter, None) == ["6001"]
    assert sleeps == [0.5, 1.0]


def test_normalises_cdk_fields(adapter: CdkAdapter) -> None:
    ro = adapter.normalise(RawRecord(payload=cdk_record()))
    assert (ro.ro_number, ro.raw_status, ro.advisor_name) == ("6001", "W", "Dana Ruiz")
    assert ro.opened_at == datetime(2026, 11, 22, 15, 45, tzinfo=UTC)
    assert ro.promised_at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 16:30 PST
    assert ro.customer is not None
    assert (ro.customer.first_name, ro.customer.last_name) == ("SAM", "LEE")
    assert [(ph.number, ph.kind) for ph in ro.customer.phones] == [
        ("415.555.0142", "mobile"),
        ("(415) 555-0143", "home"),
    ]
    assert ro.vehicle is not None and (ro.vehicle.year, ro.vehicle.mileage) == (2021, 41230)
    assert [(li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("OILCHG", 8995, "completed"),
        ("BRKPAD", 41200, "declined"),
    ]


def test_promised_time_is_local_on_both_sides_of_dst(adapter: CdkAdapter) -> None:
    summer = adapter.normalise(RawRecord(payload=cdk_record(promisedDate="2026-07-01")))
    winter = adapter.normalise(RawRecord(payload=cdk_record(promisedDate="2026-12-01")))
    assert summer.promised_at == datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # PDT, UTC-7
    assert winter.promised_at == datetime(2026, 12, 2, 0, 30, tzinfo=UTC)  # PST, UTC-8


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        (
            {"promisedTime": "4pm"},
            "promisedDate/promisedTime: not a %Y-%m-%d %H:%M time: '2026-11-22 4pm'",
        ),
        ({"openDate": None}, "openDate: missing"),
        (
            {"operations": [{"line": {"lineCode": "A", "statusCode": "Z", "laborOperations": []}}]},
            "operations[0].line.statusCode: unknown line status 'Z'",
        ),
        (
            {
                "operations": [
                    {
                        "line": {
                            "lineCode": "A",
                            "statusCode": "A",
                            "laborOperations": [{"opCode": "X", "sale": "ten"}],
                        }
                    }
                ]
            },
            "operations[0].line.laborOperations[0].sale: not an amount: 'ten'",
        ),
    ],
)
def test_malformed_cdk_records_name_the_field(
    adapter: CdkAdapter, override: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        adapter.normalise(RawRecord(payload=cdk_record(**override)))
    assert caught.value.reason == reason


def test_fetch_one(fake: CdkFake, adapter: CdkAdapter) -> None:
    fake.put(cdk_record("6123"))
    found = adapter.fetch_one("6123")
    assert found is not None and found.ro_number == "6123"
    assert adapter.fetch_one("6124") is None
