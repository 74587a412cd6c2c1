"""JSON shapes of the repair-order API: poll health, quarantine, unmapped statuses, ROs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PollHealthOut(_Out):
    rooftop: str
    healthy: bool
    cursor_at: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    lag_seconds: int | None  # seconds since the last successful poll
    consecutive_failures: int
    last_error: str | None
    last_duration_ms: int | None
    last_counts: dict[str, int] | None


class QuarantinedRecordOut(_Out):
    id: int
    ro_number: str | None
    reason: str
    payload: dict[str, Any] | str
    received_at: datetime


class UnmappedStatusOut(_Out):
    raw_status: str
    count: int
    example_ro_number: str | None
    first_seen_at: datetime
    last_seen_at: datetime


class RepairOrderSummaryOut(_Out):
    id: int
    rooftop: str
    ro_number: str
    stage: str
    raw_status: str
    advisor_name: str | None
    customer_id: int | None
    customer_name: str | None
    opened_at: datetime
    promised_at: datetime | None
    closed_at: datetime | None


class RoLineOut(_Out):
    line_code: str
    op_code: str
    description: str
    amount_cents: int
    status: str
    status_changed_at: datetime


class RoEventOut(_Out):
    kind: str
    from_stage: str | None
    to_stage: str | None
    detail: dict[str, Any] | None
    at: datetime


class VehicleOut(_Out):
    vin: str | None
    year: int | None
    make: str | None
    model: str | None


class RepairOrderOut(RepairOrderSummaryOut):
    vehicle: VehicleOut | None
    lines: list[RoLineOut]
    events: list[RoEventOut]
