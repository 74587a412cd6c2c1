"""Declined-work follow-up plans, their touches, and recovered revenue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class FollowupPlan(Base):
    """One plan per closed RO with declined lines; one message per touch covers all lines."""

    __tablename__ = "followup_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    repair_order_id: Mapped[int] = mapped_column(
        ForeignKey("repair_order.id", ondelete="CASCADE"), unique=True
    )
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(10), default="active")  # active | stopped | done
    stopped_reason: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Drawn once when the plan is made (app/followups/holdout.py), never changed: a held-out
    # plan sends nothing and is the control group the recovery report compares against.
    holdout: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The rooftop's followup_holdout_percent when the plan was drawn; 0 = no draw was made.
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class FollowupLine(Base):
    """A declined line covered by a plan. A line is followed up by one plan only."""

    __tablename__ = "followup_line"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("followup_plan.id", ondelete="CASCADE"), primary_key=True
    )
    ro_line_id: Mapped[int] = mapped_column(
        ForeignKey("ro_line.id", ondelete="CASCADE"), primary_key=True
    )


class FollowupTouch(Base):
    """One message of a plan's cadence, due `followup_days[n-1]` days after the RO closed."""

    __tablename__ = "followup_touch"
    __table_args__ = (
        UniqueConstraint("plan_id", "touch_no"),
        Index("ix_followup_touch_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("followup_plan.id", ondelete="CASCADE"))
    touch_no: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10), default="scheduled")  # scheduled|queued|canceled
    outbound_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbound_message.id", ondelete="SET NULL")
    )
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why a touch was not sent: plan stopped, stale after an outage, nothing left to ask about.
    canceled_reason: Mapped[str | None] = mapped_column(String(200))


class Recovery(Base):
    """A declined line later approved or done: the money won back, and what preceded it."""

    __tablename__ = "recovery"

    id: Mapped[int] = mapped_column(primary_key=True)
    declined_line_id: Mapped[int] = mapped_column(
        ForeignKey("ro_line.id", ondelete="CASCADE"), unique=True
    )
    recovering_line_id: Mapped[int] = mapped_column(ForeignKey("ro_line.id", ondelete="CASCADE"))
    recovered_cents: Mapped[int] = mapped_column(Integer)
    preceding_touch_no: Mapped[int | None] = mapped_column(Integer)
    customer_replied: Mapped[bool] = mapped_column(Boolean, default=False)
    recovered_at: Mapped[datetime] = mapped_column(UTCDateTime)
