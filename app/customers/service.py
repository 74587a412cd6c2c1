"""One customer record per person per dealer group, their phones and their consent.

Matching the customers a DMS gives us to one record per person: `app.customers.book`.

Phones: normalised to E.164 with the group's `default_region`. A number that does
not parse is kept as typed (an advisor can still read it) with `e164` NULL,
`textable` False and the reason, and is never texted. A landline the DMS calls
"home" or "work" is stored with that kind and stays textable: DMS phone types
are often wrong (a "home" number is frequently a mobile), so only the carrier's
verdict (Twilio error 30006 / a lookup) turns `textable` off, via `mark_not_textable`.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import phonenumbers
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.customers.models import Consent, Customer, CustomerPhone, Phone
from app.db import utcnow
from app.dealers.models import Rooftop

CHANNELS = ("sms", "whatsapp")
PURPOSES = ("status", "marketing")
LANDLINE_KINDS = ("home", "work")


def normalise_phone(raw: str, region: str) -> tuple[str | None, str | None]:
    """E.164 for a number as typed, or (None, why it is not a usable number)."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"not a phone number ({exc})"[:200]
    if not phonenumbers.is_valid_number(parsed):
        return None, f"not a valid phone number for region {region}"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


def name_key(first: str | None, last: str | None) -> str:
    """First + last name compared without case, accents or extra spaces ('' when nameless)."""
    text = unicodedata.normalize("NFKD", f"{first or ''} {last or ''}")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def dms_ref_source(rooftop: Rooftop) -> str:
    """The `CustomerRef.source` of a rooftop's DMS (rooftop id: slugs repeat across groups)."""
    return f"dms:{rooftop.id}"


def customers_for_phone(session: Session, *, group_id: int, e164: str) -> list[Customer]:
    """Every customer of the group on this number (several: a household), oldest first."""
    return list(
        session.scalars(
            select(Customer)
            .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
            .join(Phone, Phone.id == CustomerPhone.phone_id)
            .where(Phone.group_id == group_id, Phone.e164 == e164, Customer.erased_at.is_(None))
            .order_by(Customer.id)
        )
    )


def phone_is_shared(session: Session, phone_id: int) -> bool:
    """True when more than one customer is linked to this phone (a household)."""
    count = session.scalar(
        select(func.count()).select_from(CustomerPhone).where(CustomerPhone.phone_id == phone_id)
    )
    return (count or 0) > 1


def is_landline_per_dms(phone: Phone) -> bool:
    """The DMS says home/work: prefer a mobile when there is one, but still textable."""
    return phone.kind in LANDLINE_KINDS


def mark_not_textable(session: Session, *, phone: Phone, reason: str) -> None:
    """The carrier says this number cannot receive texts (e.g. Twilio 30006, a landline)."""
    phone.textable = False
    phone.not_textable_reason = reason[:200]


# --- consent ledger ----------------------------------------------------------------


def current_consent(session: Session, *, phone_id: int, channel: str, purpose: str) -> bool | None:
    """True (granted) / False (revoked) from the latest ledger row; None when there is none."""
    action = session.scalar(
        _latest_action(), {"phone_id": phone_id, "channel": channel, "purpose": purpose}
    )
    return None if action is None else action == "granted"


@cache
def _latest_action() -> Select[str]:
    """The action of a phone's latest ledger row for a channel and purpose; built once: an
    inbound "YES" asks it, and building a statement costs more than running it."""
    return (
        select(Consent.action)
        .where(
            Consent.phone_id == bindparam("phone_id"),
            Consent.channel == bindparam("channel"),
            Consent.purpose == bindparam("purpose"),
        )
        .order_by(Consent.id.desc())
        .limit(1)
    )


def record_consent(
    session: Session,
    *,
    phone: Phone,
    customer: Customer | None,
    channel: str,
    purpose: str,
    action: str,
    source: str,
    detail: str | None = None,
) -> Consent:
    """Append one row to the consent ledger (it is never updated)."""
    if channel not in CHANNELS or purpose not in PURPOSES or action not in ("granted", "revoked"):
        raise ValueError(
            f"consent needs channel in {CHANNELS}, purpose in {PURPOSES}, action granted|revoked; "
            f"got {channel!r}, {purpose!r}, {action!r}"
        )
    row = Consent(
        group_id=phone.group_id,
        phone_id=phone.id,
        customer_id=customer.id if customer is not None else None,
        channel=channel,
        purpose=purpose,
        action=action,
        source=source[:40],
        detail=detail[:200] if detail else None,
        at=utcnow(),
    )
    session.add(row)
    return row


def revoke_all(session: Session, *, phone: Phone, channel: str, source: str) -> list[Consent]:
    """STOP: revoke status texts and marketing on this channel at once.

    Always appends both rows, even when already revoked: a STOP is the customer's
    own act and the ledger is the proof that we heard it.
    """
    return [
        record_consent(
            session,
            phone=phone,
            customer=None,
            channel=channel,
            purpose=purpose,
            action="revoked",
            source=source,
        )
        for purpose in PURPOSES
    ]
