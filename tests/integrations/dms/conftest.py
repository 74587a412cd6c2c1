"""Shared fixtures: fast retry policies (no real sleeping) and sample records."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.dms.http import RetryPolicy


class Sleeps(list[float]):
    """Records the waits a retry policy asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fast_retry(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(attempts=4, budget_seconds=10.0, sleep=sleeps)


def bridge_record(ro_number: str = "R1001", **overrides: Any) -> dict[str, Any]:
    """The example record from the bridge contract in DESIGN.md."""
    record: dict[str, Any] = {
        "ro_number": ro_number,
        "status": "READY",
        "opened_at": "2026-11-22T15:02:00Z",
        "updated_at": "2026-11-22T17:40:00Z",
        "promised_at": "2026-11-22T22:00:00Z",
        "closed_at": None,
        "advisor": {"id": "A7", "name": "Dana Ruiz"},
        "customer": {
            "id": "C-4411",
            "first_name": "Sam",
            "last_name": "Lee",
            "phones": [{"number": "(415) 555-0142", "kind": "mobile"}],
            "email": "sam@example.com",
            "language": "en",
            "sms_consent": True,
            "marketing_consent": False,
        },
        "vehicle": {
            "vin": "JTMW1RFV5MD012345",
            "year": 2021,
            "make": "Toyota",
            "model": "RAV4",
            "mileage": 41230,
        },
        "lines": [
            {
                "line": "A",
                "op_code": "OILCHG",
                "description": "Oil and filter",
                "status": "approved",
                "amount": "89.95",
            },
            {
                "line": "B",
                "op_code": "BRKPAD",
                "description": "Front brake pads",
                "status": "declined",
                "amount": "412.00",
            },
        ],
    }
    record.update(overrides)
    return record
