"""JSON shapes of the inbox, timeline and conversation-report API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class InboxTask(BaseModel):
    id: int
    kind: str
    summary: str
    customer_id: int | None
    customer_name: str | None
    repair_order_id: int | None
    advisor_ref: str | None
    assigned_user_id: int | None
    created_at: datetime
    taken_at: datetime | None
    waiting_seconds: int
    last_message: str | None = None
    last_message_at: datetime | None = None


class Inbox(BaseModel):
    rooftop: str
    tasks: list[InboxTask]


class ReplyIn(BaseModel):
    body: str = Field(min_length=1, max_length=1600, description="The text to send")
    request_id: str | None = Field(
        None,
        max_length=64,
        description="Repeat a request with the same id and it is queued once (safe to retry)",
    )


class ReplyOut(BaseModel):
    message_id: int
    state: str
    dedupe_key: str
    channel: str
    task_state: str


class TaskOut(BaseModel):
    id: int
    state: str
    assigned_user_id: int | None
    taken_at: datetime | None
    done_at: datetime | None


class Timeline(BaseModel):
    customer_id: int
    name: str
    items: list[dict[str, Any]]
