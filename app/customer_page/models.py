"""Links to the customer's page, what happened on it, and what advisors added to lines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class CustomerLink(Base):
    """One private link, minted for one text: only the token's SHA-256 is kept.

    Bound to one RO and one customer; it opens while the RO is open and for the rooftop's
    `customer_page_days_after_close` after the later of the close and the link's minting.
    """

    __tablename__ = "customer_link"
    __table_args__ = (Index("ix_customer_link_ro", "repair_order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    repair_order_id: Mapped[int] = mapped_column(ForeignKey("repair_order.id", ondelete="CASCADE"))
    # An erased customer's links die with the binding (NULL never matches the RO's customer).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    outbound_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="SET NULL"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(12))  # status | followup
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    open_count: Mapped[int] = mapped_column(Integer, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(254))


class PageVisit(Base):
    """The first time each day (rooftop's calendar) the customer looked at an RO's page."""

    __tablename__ = "customer_page_visit"
    __table_args__ = (UniqueConstraint("repair_order_id", "customer_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"), index=True)
    repair_order_id: Mapped[int] = mapped_column(ForeignKey("repair_order.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("customer_link.id", ondelete="SET NULL"))
    day: Mapped[date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(20))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PageAnswer(Base):
    """One answer on the page: every line as shown (text, note, price), its choice, who sent it."""

    __tablename__ = "customer_page_answer"
    __table_args__ = (Index("ix_customer_page_answer_ro", "repair_order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("customer_link.id", ondelete="SET NULL"))
    # [{"line", "op_code", "description", "note", "photos", "amount_cents", "choice"}]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    approved_cents: Mapped[int] = mapped_column(Integer)
    declined_cents: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(5))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    # When the RO last moved to awaiting_approval: the request this answers.
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))


class LineAnswer(Base):
    """A line's one answer from the page: the unique line id is what makes a double submit safe."""

    __tablename__ = "customer_line_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    ro_line_id: Mapped[int] = mapped_column(
        ForeignKey("ro_line.id", ondelete="CASCADE"), unique=True
    )
    answer_id: Mapped[int] = mapped_column(
        ForeignKey("customer_page_answer.id", ondelete="CASCADE"), index=True
    )
    choice: Mapped[str] = mapped_column(String(8))  # approve | decline
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class LineNote(Base):
    """A note an advisor adds to a line in Pitwall (the DMS's own note is `RoLine.note`)."""

    __tablename__ = "ro_line_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    ro_line_id: Mapped[int] = mapped_column(
        ForeignKey("ro_line.id", ondelete="CASCADE"), index=True
    )
    note: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10))  # dms | advisor
    author: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinePhoto(Base):
    """A photo of a line, stored under a random key; served only through a customer link."""

    __tablename__ = "ro_line_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    ro_line_id: Mapped[int] = mapped_column(
        ForeignKey("ro_line.id", ondelete="CASCADE"), index=True
    )
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    content_type: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(10))  # dms | advisor
    author: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Booking(Base):
    """An appointment request for declined work (or a call-back request) from the page.

    (rooftop, slot, seat) is unique: two customers taking an hour's last seat at once
    cannot both have it.
    """

    __tablename__ = "booking"
    __table_args__ = (
        UniqueConstraint("rooftop_id", "slot_start", "seat"),
        Index("ix_booking_rooftop_created", "rooftop_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("customer_link.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(12))  # appointment | callback
    slot_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seat: Mapped[int | None] = mapped_column(Integer)
    # [{"line", "op_code", "description", "amount_cents"}] as shown when booked.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_cents: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), default="requested")  # requested | canceled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
