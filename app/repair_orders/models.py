"""Vehicles, repair orders, their lines and stage history, and what the DMS got wrong."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

LINE_STATUSES = ("approved", "declined", "pending", "completed")
OPEN_STAGES = (
    "checked_in",
    "diagnosing",
    "awaiting_approval",
    "awaiting_parts",
    "in_repair",
    "quality_check",
    "ready_for_pickup",
)


class Vehicle(Base):
    __tablename__ = "vehicle"
    __table_args__ = (UniqueConstraint("group_id", "vin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"))
    vin: Mapped[str | None] = mapped_column(String(17))
    year: Mapped[int | None] = mapped_column(Integer)
    make: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(String(60))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), index=True
    )

    @property
    def label(self) -> str:
        return " ".join(str(p) for p in (self.year, self.make, self.model) if p) or "vehicle"


class RepairOrder(Base):
    __tablename__ = "repair_order"
    __table_args__ = (
        UniqueConstraint("rooftop_id", "ro_number"),
        Index("ix_repair_order_rooftop_stage", "rooftop_id", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    ro_number: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), index=True
    )
    vehicle_id: Mapped[int | None] = mapped_column(
        ForeignKey("vehicle.id", ondelete="SET NULL"), index=True
    )
    advisor_ref: Mapped[str | None] = mapped_column(String(40))
    advisor_name: Mapped[str | None] = mapped_column(String(100))
    raw_status: Mapped[str] = mapped_column(String(60))
    stage: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dms_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The raw DMS payload's hash lets an overlap re-read skip even normalising;
    # the customer's lets an RO change skip customer matching when the person is unchanged;
    # the lines' and vehicle's let it skip reading those when the DMS says the same.
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    customer_hash: Mapped[str | None] = mapped_column(String(64))
    lines_hash: Mapped[str | None] = mapped_column(String(64))
    vehicle_hash: Mapped[str | None] = mapped_column(String(64))
    missing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    missing_polls: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[RoLine]] = relationship(
        back_populates="repair_order", cascade="all, delete-orphan", order_by="RoLine.id"
    )
    vehicle: Mapped[Vehicle | None] = relationship()


class RoLine(Base):
    __tablename__ = "ro_line"
    __table_args__ = (
        UniqueConstraint("repair_order_id", "line_code"),
        Index("ix_ro_line_op_code_status", "op_code", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repair_order_id: Mapped[int] = mapped_column(ForeignKey("repair_order.id", ondelete="CASCADE"))
    line_code: Mapped[str] = mapped_column(String(20))
    op_code: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(300))
    amount_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    customer_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The technician's words about the line, as the DMS carries them (DmsLine.note).
    note: Mapped[str | None] = mapped_column(String(1000))

    repair_order: Mapped[RepairOrder] = relationship(back_populates="lines")


class RoEvent(Base):
    """Stage history and other notable changes (promised time moved, vanished, closed)."""

    __tablename__ = "ro_event"
    __table_args__ = (Index("ix_ro_event_ro_at", "repair_order_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repair_order_id: Mapped[int] = mapped_column(ForeignKey("repair_order.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # stage | promised | vanished | unmapped
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantinedRecord(Base):
    """A DMS record that could not be parsed, kept with its payload and reason."""

    __tablename__ = "quarantined_record"
    __table_args__ = (Index("ix_quarantined_record_rooftop_at", "rooftop_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    ro_number: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UnmappedStatus(Base):
    """A raw DMS status with no stage in the rooftop's status map, for an admin to map."""

    __tablename__ = "unmapped_status"
    __table_args__ = (UniqueConstraint("rooftop_id", "raw_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    raw_status: Mapped[str] = mapped_column(String(60))
    count: Mapped[int] = mapped_column(Integer, default=0)
    example_ro_number: Mapped[str | None] = mapped_column(String(40))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DmsPollState(Base):
    """Poll cursor and health per rooftop."""

    __tablename__ = "dms_poll_state"

    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"), primary_key=True)
    cursor_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    last_counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DmsWrite(Base):
    """Customers' answers to write back into the DMS, where its adapter can (a small queue).

    One row per answer (a page confirmation, an approval by text): ``lines`` as
    [{"line_code", "op_code", "amount_cents", "choice": "approved" | "declined"}]. The
    worker writes ``pending`` rows when ``next_attempt_at`` is due, retrying with a
    growing wait; after the last attempt the row is ``failed`` and the advisor is told.
    """

    __tablename__ = "dms_write"
    __table_args__ = (Index("ix_dms_write_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    repair_order_id: Mapped[int] = mapped_column(ForeignKey("repair_order.id", ondelete="CASCADE"))
    ro_number: Mapped[str] = mapped_column(String(40))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(10))  # page | sms | whatsapp
    state: Mapped[str] = mapped_column(String(10))  # pending | written | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    written_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
