"""One customer record per person per dealer group, their phones and their consent.

Matching a customer a DMS gives us, in order:

1. The DMS's own id (`CustomerRef`: source + external id) is known: that customer.
2. A customer of the group has one of the same phone numbers (E.164) AND the same
   first and last name (ignoring case, accents and spacing): the same person,
   known to another rooftop under another id. They get a second reference.
3. Same phone, different name: a household. A NEW customer linked to the same
   `Phone` row; `phone_is_shared` / `customers_for_phone` say so, so that reply
   matching asks instead of guessing.
4. Otherwise a new customer.

A customer without any name never merges by phone: there is nothing to confirm it
is the same person.

Phones: normalised to E.164 with the group's `default_region`. A number that does
not parse is kept as typed (an advisor can still read it) with `e164` NULL,
`textable` False and the reason, and is never texted. A landline the DMS calls
"home" or "work" is stored with that kind and stays textable: DMS phone types
are often wrong (a "home" number is frequently a mobile), so only the carrier's
verdict (Twilio error 30006 / a lookup) turns `textable` off, via `mark_not_textable`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.db import is_postgres, utcnow
from app.dealers.models import DealerGroup, Rooftop
from integrations.dms.base import DmsCustomer, DmsPhone

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


def resolve_customer(
    session: Session,
    *,
    group: DealerGroup,
    rooftop: Rooftop,
    dms_customer: DmsCustomer,
    source: str,
) -> Customer:
    """The one Pitwall customer for a DMS customer; created or updated as needed.

    Also links the phones the DMS gives and carries its consent fields into the
    ledger (only when they differ from the ledger's current state).
    """
    # One flush at the end instead of an autoflush before each of a dozen lookups:
    # a first poll of a big rooftop resolves thousands of customers in one page.
    with session.no_autoflush:
        customer = _resolve(
            session, group=group, rooftop=rooftop, dms_customer=dms_customer, source=source
        )
    session.flush()
    return customer


def _resolve(
    session: Session,
    *,
    group: DealerGroup,
    rooftop: Rooftop,
    dms_customer: DmsCustomer,
    source: str,
) -> Customer:
    phones = [_phone_for(session, group=group, dms_phone=p) for p in dms_customer.phones]
    customer = session.scalar(
        select(Customer)
        .join(CustomerRef, CustomerRef.customer_id == Customer.id)
        .where(
            CustomerRef.source == source,
            CustomerRef.external_id == dms_customer.external_id,
            Customer.group_id == group.id,
        )
    )
    if customer is None:
        customer = _same_person(session, group=group, dms_customer=dms_customer, phones=phones)
        if customer is None:
            customer = Customer(group_id=group.id)
            session.add(customer)
            session.flush()
        session.add(
            CustomerRef(
                customer_id=customer.id,
                source=source,
                external_id=dms_customer.external_id,
                rooftop_id=rooftop.id,
            )
        )
    _update_details(customer, dms_customer)
    _link_phones(session, customer=customer, phones=phones)
    _carry_dms_consent(
        session, customer=customer, phones=phones, dms_customer=dms_customer, rooftop=rooftop
    )
    return customer


def _same_person(
    session: Session, *, group: DealerGroup, dms_customer: DmsCustomer, phones: list[Phone]
) -> Customer | None:
    wanted = name_key(dms_customer.first_name, dms_customer.last_name)
    if not wanted:
        return None
    # Mobiles first: a shared landline says less about identity than a mobile does.
    ordered = sorted(phones, key=lambda p: p.kind != "mobile")
    for phone in ordered:
        if phone.e164 is None:
            continue
        for candidate in customers_for_phone(session, group_id=group.id, e164=phone.e164):
            if name_key(candidate.first_name, candidate.last_name) == wanted:
                return candidate
    return None


def _update_details(customer: Customer, dms_customer: DmsCustomer) -> None:
    # Only what the DMS actually says replaces what we hold; a blank never erases.
    for attr in ("first_name", "last_name", "email", "language"):
        value = getattr(dms_customer, attr)
        if value is not None and getattr(customer, attr) != value:
            setattr(customer, attr, value)


def _phone_for(session: Session, *, group: DealerGroup, dms_phone: DmsPhone) -> Phone:
    """The group's Phone row for a number as typed (created when new)."""
    e164, reason = normalise_phone(dms_phone.number, group.default_region)
    if e164 is None:
        # Unparseable numbers are kept per customer (linked in _link_phones), never shared.
        return Phone(
            group_id=group.id,
            e164=None,
            as_typed=dms_phone.number[:64],
            kind=dms_phone.kind,
            textable=False,
            not_textable_reason=reason,
        )
    phone: Phone | None = session.scalar(
        select(Phone).where(Phone.group_id == group.id, Phone.e164 == e164)
    )
    if phone is None:
        # Another rooftop's poller may create the same number at the same moment.
        insert = postgresql.insert if is_postgres(session) else sqlite.insert
        session.execute(
            insert(Phone)
            .values(
                group_id=group.id,
                e164=e164,
                as_typed=dms_phone.number[:64],
                kind=dms_phone.kind,
                textable=True,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["group_id", "e164"])
        )
        return session.scalars(
            select(Phone).where(Phone.group_id == group.id, Phone.e164 == e164)
        ).one()
    if phone.kind is None and dms_phone.kind is not None:
        phone.kind = dms_phone.kind
    return phone


def _link_phones(session: Session, *, customer: Customer, phones: list[Phone]) -> None:
    links = {link.phone_id: link for link in customer.phone_links}
    typed = {link.phone.as_typed for link in customer.phone_links if link.phone.e164 is None}
    has_primary = any(link.is_primary for link in links.values())
    for phone in phones:
        if phone.id is None:
            if phone.as_typed in typed:
                continue  # this unparseable number is already on file for them
            session.add(phone)
            session.flush()
            typed.add(phone.as_typed)
        if phone.id in links:
            continue
        primary = not has_primary and phone.textable
        has_primary = has_primary or primary
        link = CustomerPhone(
            customer_id=customer.id, phone_id=phone.id, kind=phone.kind, is_primary=primary
        )
        link.phone = phone
        customer.phone_links.append(link)
        links[phone.id] = link


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
    row = _latest(session, phone_id=phone_id, channel=channel, purpose=purpose)
    return None if row is None else row.action == "granted"


def _latest(session: Session, *, phone_id: int, channel: str, purpose: str) -> Consent | None:
    return session.scalar(
        select(Consent)
        .where(Consent.phone_id == phone_id, Consent.channel == channel, Consent.purpose == purpose)
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


def _carry_dms_consent(
    session: Session,
    *,
    customer: Customer,
    phones: Iterable[Phone],
    dms_customer: DmsCustomer,
    rooftop: Rooftop,
) -> None:
    """Append the DMS's consent fields to the ledger, only where they change its state.

    A DMS grant never overrides a revocation that came from elsewhere (the customer's
    STOP, a carrier opt-out, an advisor): a checkbox in the DMS is not the customer
    saying START.
    """
    source = f"dms:{rooftop.slug}"
    wanted = {"status": dms_customer.sms_consent, "marketing": dms_customer.marketing_consent}
    for phone in phones:
        if phone.e164 is None or phone.id is None:
            continue
        for purpose, value in wanted.items():
            if value is None:
                continue
            latest = _latest(session, phone_id=phone.id, channel="sms", purpose=purpose)
            current = None if latest is None else latest.action == "granted"
            if current == value:
                continue
            if value and latest is not None and not latest.source.startswith("dms:"):
                continue
            record_consent(
                session,
                phone=phone,
                customer=customer,
                channel="sms",
                purpose=purpose,
                action="granted" if value else "revoked",
                source=source,
            )
