"""The outbox: putting messages in it, once per dedupe key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.messaging.models import OutboundMessage


@dataclass(frozen=True)
class MessageRequest:
    """Something Pitwall means to tell a customer. Rendering and policy come later."""

    rooftop_id: int
    customer_id: int | None
    phone_id: int | None
    kind: str  # status | followup | reply | textback | watchdog
    purpose: str  # status | marketing | conversational
    dedupe_key: str
    body: str | None = None
    template: str | None = None
    repair_order_id: int | None = None
    stage: str | None = None
    channel: str = "sms"
    to_address: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, Any] | None = None
    not_before: datetime | None = None
    expires_at: datetime | None = None
    created_by_user_id: int | None = None


def enqueue(session: Session, request: MessageRequest) -> OutboundMessage | None:
    """Add a message to the outbox unless one with the same dedupe key exists.

    Returns the new row, or None when the key was already used (the caller's rule
    already fired, e.g. on an earlier poll).
    """
    existing = session.scalar(
        select(OutboundMessage.id).where(OutboundMessage.dedupe_key == request.dedupe_key)
    )
    if existing is not None:
        return None
    message = OutboundMessage(
        rooftop_id=request.rooftop_id,
        customer_id=request.customer_id,
        phone_id=request.phone_id,
        repair_order_id=request.repair_order_id,
        kind=request.kind,
        purpose=request.purpose,
        stage=request.stage,
        template=request.template,
        dedupe_key=request.dedupe_key,
        channel=request.channel,
        to_address=request.to_address,
        body=request.body,
        content_sid=request.content_sid,
        content_variables=request.content_variables,
        not_before=request.not_before or utcnow(),
        expires_at=request.expires_at,
        created_by_user_id=request.created_by_user_id,
        state="pending",
    )
    session.add(message)
    session.flush()
    return message
