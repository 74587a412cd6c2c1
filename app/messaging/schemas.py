"""What the API and pages show of an outbox message."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class OutboundMessageOut(BaseModel):
    """One outbox row as an advisor or director reads it: what, to whom, and what happened."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rooftop_id: int
    customer_id: int | None
    repair_order_id: int | None
    kind: str
    stage: str | None
    template: str | None
    channel: str
    to_address: str | None
    body: str | None
    content_sid: str | None
    state: str
    suppressed_reason: str | None
    not_before: datetime
    expires_at: datetime | None
    attempt: int
    provider_sid: str | None
    provider_status: str | None
    error_code: int | None
    error_message: str | None
    num_segments: int | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class TemplatePreview(BaseModel):
    """One rendered template with its SMS cost."""

    name: str
    language: str
    body: str
    segments: int
    encoding: str
