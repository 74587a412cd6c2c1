"""Who to text and on which channel: the customer's phone, SMS or WhatsApp, the 24 h window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.conversations.models import InboundMessage
from app.customers.models import Customer, CustomerPhone, Phone
from app.dealers.models import Rooftop

WHATSAPP_WINDOW = timedelta(hours=24)
CHANNELS = ("sms", "whatsapp")


class Senders(Protocol):
    """A rooftop's sender numbers: the row, or what a claimed batch read of it."""

    @property
    def sms_from(self) -> str | None: ...
    @property
    def whatsapp_from(self) -> str | None: ...
    @property
    def messaging_service_sid(self) -> str | None: ...


@dataclass(frozen=True)
class Recipient:
    """Where a message goes: the phone, the channel, and both addresses as Twilio wants them."""

    phone: Phone
    channel: str
    to_address: str
    from_address: str | None  # None: the rooftop's Messaging Service picks the sender


def primary_phone(session: Session, *, customer_id: int) -> Phone | None:
    """The customer's best textable phone: primary first, then mobile, then oldest link."""
    rows = session.execute(
        select(Phone, CustomerPhone)
        .join(CustomerPhone, CustomerPhone.phone_id == Phone.id)
        .where(
            CustomerPhone.customer_id == customer_id,
            Phone.textable.is_(True),
            Phone.e164.is_not(None),
        )
    ).all()
    if not rows:
        return None
    return min(rows, key=lambda row: phone_rank(row[1].kind, row[0], row[1].is_primary))[0]


def phone_rank(link_kind: str | None, phone: Phone, is_primary: bool) -> tuple[int, int, int]:
    """How good a textable phone is for a customer: primary first, then mobile, then oldest."""
    kind = link_kind or phone.kind
    return (0 if is_primary else 1, 0 if kind in (None, "mobile") else 1, phone.id)


def pick_channel(last_inbound: str | None, preferred: str | None) -> str:
    """The channel rule: the last inbound one, else the DMS preference, else SMS."""
    if last_inbound in CHANNELS:
        return str(last_inbound)
    if preferred in CHANNELS:
        return str(preferred)
    return "sms"


def choose_channel(session: Session, *, customer: Customer, rooftop: Rooftop) -> str:
    """The customer's last inbound channel, else their DMS preference, else SMS.

    WhatsApp is only possible when the rooftop has a WhatsApp sender.
    """
    if not rooftop.whatsapp_from:
        return "sms"
    last = session.scalar(
        select(InboundMessage.channel)
        .where(InboundMessage.customer_id == customer.id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(1)
    )
    return pick_channel(last, customer.preferred_channel)


def sms_recipient(phone: Phone, rooftop: Rooftop) -> Recipient:
    """The SMS addresses for a phone at a rooftop."""
    assert phone.e164 is not None
    return Recipient(phone, "sms", phone.e164, sender_for(rooftop, "sms"))


def sender_for(rooftop: Senders, channel: str) -> str | None:
    """The From address for `channel`; None for SMS through the rooftop's Messaging Service."""
    if channel == "whatsapp":
        return f"whatsapp:{rooftop.whatsapp_from}" if rooftop.whatsapp_from else None
    return None if rooftop.messaging_service_sid else rooftop.sms_from


def recipient_for(phone: Phone, rooftop: Rooftop, channel: str) -> Recipient:
    """Addresses for `channel`; WhatsApp without a rooftop sender falls back to SMS."""
    if channel == "whatsapp" and rooftop.whatsapp_from and phone.e164:
        return Recipient(
            phone, "whatsapp", f"whatsapp:{phone.e164}", f"whatsapp:{rooftop.whatsapp_from}"
        )
    return sms_recipient(phone, rooftop)


def last_whatsapp_inbound(
    session: Session, *, customer_id: int | None, phone_id: int | None
) -> datetime | None:
    """When the customer last wrote to us on WhatsApp (opens Meta's 24 h session window)."""
    matches = []
    if customer_id is not None:
        matches.append(InboundMessage.customer_id == customer_id)
    if phone_id is not None:
        matches.append(InboundMessage.phone_id == phone_id)
    if not matches:
        return None
    latest: datetime | None = session.scalar(
        select(InboundMessage.received_at)
        .where(InboundMessage.channel == "whatsapp", or_(*matches))
        .order_by(InboundMessage.received_at.desc())
        .limit(1)
    )
    return latest


def whatsapp_window_open(
    session: Session, *, customer_id: int | None, phone_id: int | None, now: datetime
) -> bool:
    """True while free-form WhatsApp text is allowed: the customer wrote within 24 hours."""
    last = last_whatsapp_inbound(session, customer_id=customer_id, phone_id=phone_id)
    return last is not None and now - last < WHATSAPP_WINDOW
