"""Logins, browser sessions and API tokens, scoped to a dealer group and, for advisors,
rooftops; failed logins for the rate limit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.dealers.models import Rooftop

ROLES = ("advisor", "director", "admin")

user_rooftop = Table(
    "user_rooftop",
    Base.metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("rooftop_id", ForeignKey("rooftop.id", ondelete="CASCADE"), primary_key=True),
)

token_rooftop = Table(
    "api_token_rooftop",
    Base.metadata,
    Column("token_id", ForeignKey("api_token.id", ondelete="CASCADE"), primary_key=True),
    Column("rooftop_id", ForeignKey("rooftop.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    __tablename__ = "app_user"
    __table_args__ = (UniqueConstraint("email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # What customers and colleagues read ("Dana Ruiz"); the email when not set.
    name: Mapped[str | None] = mapped_column(String(200))
    # The advisor's id in the DMS (an RO's advisor.id), linking their ROs to this login.
    dms_advisor_id: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    rooftops: Mapped[list[Rooftop]] = relationship(secondary=user_rooftop)

    @property
    def display_name(self) -> str:
        return self.name or self.email


class ApiToken(Base):
    """Only a hash of the token is stored; the token itself is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    rooftops: Mapped[list[Rooftop]] = relationship(secondary=token_rooftop)


class WebSessionRecord(Base):
    """A logged-in browser. Only a hash of the session id is stored (like API tokens):
    someone who reads the database cannot act as a logged-in user."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    # The page shows this token anyway; without the session id it is worth nothing.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ip: Mapped[str] = mapped_column(String(45), default="")

    user: Mapped[User] = relationship()


class AdminChange(Base):
    """One change an admin made in the app (or the CLI): who, when, what, old and new.

    Values are the TOML-shaped settings as JSON text (secrets never reach this table).
    """

    __tablename__ = "admin_change"
    __table_args__ = (Index("ix_admin_change_group_at", "group_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"))
    actor: Mapped[str] = mapped_column(String(254))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    subject: Mapped[str] = mapped_column(String(200))  # "rooftop bayview-toyota: status_map"
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)


class LoginAttempt(Base):
    """A failed login, kept for the rate-limit windows only (pruned as new ones arrive)."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_ip_at", "ip", "attempted_at"),
        Index("ix_login_attempt_email_ip_at", "email", "ip", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(45))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
