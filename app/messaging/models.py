"""The outbox: every message Pitwall means to send, and what became of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

# pending -> claimed -> sent -> delivered -> read; failed/undelivered/expired/suppressed/
# superseded are final. `retry` is pending again with a later not_before.
FINAL_STATES = (
    "delivered",
    "read",
    "failed",
    "undelivered",
    "expired",
    "suppressed",
    "superseded",
    "canceled",
)


class OutboundMessage(Base):
    __tablename__ = "outbound_message"
    __table_args__ = (
        # The dispatcher's claim query: due pending rows, oldest first.
        Index("ix_outbound_message_due", "state", "not_before", "id"),
        Index("ix_outbound_message_customer_created", "customer_id", "created_at"),
        Index("ix_outbound_message_ro", "repair_order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phone.id", ondelete="SET NULL"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20))  # status | followup | reply | textback | watchdog
    purpose: Mapped[str] = mapped_column(String(14))  # status | marketing | conversational
    stage: Mapped[str | None] = mapped_column(String(20))
    template: Mapped[str | None] = mapped_column(String(60))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(10))  # sms | whatsapp
    to_address: Mapped[str | None] = mapped_column(String(40))
    from_address: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str | None] = mapped_column(Text)
    content_sid: Mapped[str | None] = mapped_column(String(34))
    content_variables: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    suppressed_reason: Mapped[str | None] = mapped_column(String(200))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider_sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    provider_status: Mapped[str | None] = mapped_column(String(20))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    num_segments: Mapped[int | None] = mapped_column(Integer)
    fallback_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="SET NULL")
    )
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SenderPace(Base):
    """The next free send slot of one sender number, shared by every worker."""

    __tablename__ = "sender_pace"

    sender: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_slot_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EarlyStatus(Base):
    """A status callback that came before its send was recorded (the outbox records a
    batch's message SIDs once the whole batch is sent): held until the SID is known."""

    __tablename__ = "early_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
