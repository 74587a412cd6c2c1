"""Leases that keep one worker per job, and alerts sent to operators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Lease(Base):
    """A named lease (e.g. `dms:3`, `job:followups`) held by one worker until it expires."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """One open incident per key; a recovery notice closes it."""

    __tablename__ = "alert"

    key: Mapped[str] = mapped_column(String(150), primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the condition was last re-checked at its source (e.g. Twilio credentials).
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
