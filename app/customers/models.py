"""One shared customer record per person per dealer group, their phones and consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"), index=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str | None] = mapped_column(String(5))
    # The language the customer writes to us in, once two texts in a row agree; it wins
    # over the DMS's `language`, which a later poll may set again.
    texts_language: Mapped[str | None] = mapped_column(String(5))
    preferred_channel: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    refs: Mapped[list[CustomerRef]] = relationship(back_populates="customer")
    phone_links: Mapped[list[CustomerPhone]] = relationship(back_populates="customer")

    @property
    def preferred_language(self) -> str | None:
        """The language to write to this customer in, when known."""
        return self.texts_language or self.language

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or f"Customer {self.id}"


class CustomerRef(Base):
    """How a DMS knows this customer: (source, external id), source = rooftop's DMS."""

    __tablename__ = "customer_ref"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    rooftop_id: Mapped[int | None] = mapped_column(ForeignKey("rooftop.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="refs")


class Phone(Base):
    """A number in the group. Shared by a household when several customers link to it.

    `e164` is null when the number as typed could not be parsed; such a phone is
    kept (the advisor can read it) but never texted.
    """

    __tablename__ = "phone"
    __table_args__ = (UniqueConstraint("group_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"))
    e164: Mapped[str | None] = mapped_column(String(20))
    as_typed: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str | None] = mapped_column(String(10))
    textable: Mapped[bool] = mapped_column(Boolean, default=True)
    not_textable_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    links: Mapped[list[CustomerPhone]] = relationship(back_populates="phone")


class CustomerPhone(Base):
    __tablename__ = "customer_phone"
    __table_args__ = (Index("ix_customer_phone_phone_id", "phone_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    phone_id: Mapped[int] = mapped_column(
        ForeignKey("phone.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str | None] = mapped_column(String(10))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    customer: Mapped[Customer] = relationship(back_populates="phone_links")
    phone: Mapped[Phone] = relationship(back_populates="links")


class Consent(Base):
    """Append-only consent ledger. The latest row for (phone, channel, purpose) wins."""

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_lookup", "phone_id", "channel", "purpose", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("dealer_group.id"))
    phone_id: Mapped[int] = mapped_column(ForeignKey("phone.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10))  # sms | whatsapp
    purpose: Mapped[str] = mapped_column(String(12))  # status | marketing
    action: Mapped[str] = mapped_column(String(8))  # granted | revoked
    source: Mapped[str] = mapped_column(String(40))  # dms:<slug> | keyword | twilio:21610 | advisor
    detail: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
