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
from sqlalchemy.orm import Session, selectinload

from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.db import chunks, is_postgres, one_of, utcnow
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
    """The one Pitwall customer for a DMS customer; created or updated as needed (flushed).

    Also links the phones the DMS gives and carries its consent fields into the
    ledger (only when they differ from the ledger's current state). A page of
    records matches its customers together through a `CustomerBook` instead.
    """
    book = CustomerBook(
        session, group=group, rooftop=rooftop, source=source, customers=[dms_customer]
    )
    customer = book.resolve(dms_customer)
    session.flush()
    return customer


class CustomerBook:
    """The customers of one page of DMS records, matched together.

    Everything the matching rules (module docstring) consult is read up front, in a
    handful of set-based queries for the whole page: the DMS ids already on file, the
    group's phones (new numbers inserted in one statement), the customers on those
    phones and the latest consent of each. `resolve` then matches one DMS customer in
    memory and adds what is new to the session; the caller's next flush writes the
    page's customers, references and links in a few batched INSERTs. Each `resolve`
    sees what the page's earlier ones made: the same person twice in a page is one
    customer, a household two.

    A first poll of 1,000 new ROs took ten statements per customer before (8 ms
    each on PostgreSQL); the page's statements no longer grow with its customers.
    """

    def __init__(
        self,
        session: Session,
        *,
        group: DealerGroup,
        rooftop: Rooftop,
        source: str,
        customers: Iterable[DmsCustomer],
    ) -> None:
        self.session, self.group, self.rooftop, self.source = session, group, rooftop, source
        wanted = list(customers)
        self._e164: dict[str, tuple[str | None, str | None]] = {}  # as typed -> E.164, reason
        with session.no_autoflush:
            self.by_ref = self._read_refs({c.external_id for c in wanted})
            numbers: dict[str, DmsPhone] = {}  # E.164 -> the page's first phone with it
            for c in wanted:
                for p in c.phones:
                    if (e164 := self._normalised(p.number)[0]) is not None:
                        numbers.setdefault(e164, p)
            self.phones = self._read_phones(numbers)
            unknown = {
                e164
                for c in wanted
                if c.external_id not in self.by_ref and name_key(c.first_name, c.last_name)
                for p in c.phones
                if (e164 := self._normalised(p.number)[0]) is not None
            }
            self.on_phone = self._read_households(unknown)
            self.latest = self._read_consents(
                [self.phones[n].id for n in numbers]
                if any(c.sms_consent is not None or c.marketing_consent is not None for c in wanted)
                else []
            )

    # --- reading the page's state, set-based ------------------------------------------

    def _normalised(self, typed: str) -> tuple[str | None, str | None]:
        found = self._e164.get(typed)
        if found is None:
            found = self._e164[typed] = normalise_phone(typed, self.group.default_region)
        return found

    def _read_refs(self, external_ids: set[str]) -> dict[str, Customer]:
        found: dict[str, Customer] = {}
        for chunk in chunks(sorted(external_ids)):
            rows = self.session.execute(
                select(CustomerRef.external_id, Customer)
                .join(Customer, CustomerRef.customer_id == Customer.id)
                .where(
                    CustomerRef.source == self.source,
                    one_of(self.session, CustomerRef.external_id, chunk),
                    Customer.group_id == self.group.id,
                )
                .options(selectinload(Customer.phone_links).joinedload(CustomerPhone.phone))
            )
            found.update((external_id, customer) for external_id, customer in rows)
        return found

    def _read_phones(self, numbers: dict[str, DmsPhone]) -> dict[str, Phone]:
        """The group's Phone row for each E.164 number; the missing ones inserted first, as
        the page first types them (ON CONFLICT DO NOTHING: another rooftop's poller may
        insert one meanwhile)."""
        phones = self._select_phones(set(numbers))
        missing = {
            e164: {
                "group_id": self.group.id,
                "e164": e164,
                "as_typed": dms_phone.number[:64],
                "kind": dms_phone.kind,
                "textable": True,
                "created_at": utcnow(),
            }
            for e164, dms_phone in numbers.items()
            if e164 not in phones
        }
        if missing:
            insert = postgresql.insert if is_postgres(self.session) else sqlite.insert
            # One statement for all, executed many: a multi-row VALUES is compiled afresh
            # for every chunk (a twelfth of a first poll of 1,000 new customers).
            statement = insert(Phone).on_conflict_do_nothing(index_elements=["group_id", "e164"])
            self.session.execute(statement, list(missing.values()))
            phones.update(self._select_phones(set(missing)))
        return phones

    def _select_phones(self, numbers: set[str]) -> dict[str, Phone]:
        found: dict[str, Phone] = {}
        for chunk in chunks(sorted(numbers)):
            query = select(Phone).where(
                Phone.group_id == self.group.id, one_of(self.session, Phone.e164, chunk)
            )
            found.update((phone.e164, phone) for phone in self.session.scalars(query) if phone.e164)
        return found

    def _read_households(self, numbers: set[str]) -> dict[str, list[Customer]]:
        """E.164 -> the group's customers on it, oldest first (`customers_for_phone`)."""
        found: dict[str, list[Customer]] = {}
        for chunk in chunks(sorted(numbers)):
            rows = self.session.execute(
                select(Phone.e164, Customer)
                .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                .join(Phone, Phone.id == CustomerPhone.phone_id)
                .where(
                    Phone.group_id == self.group.id,
                    one_of(self.session, Phone.e164, chunk),
                    Customer.erased_at.is_(None),
                )
                .order_by(Customer.id)
                .options(selectinload(Customer.phone_links).joinedload(CustomerPhone.phone))
            )
            for e164, customer in rows:
                found.setdefault(str(e164), []).append(customer)
        return found

    def _read_consents(self, phone_ids: list[int]) -> dict[tuple[int, str], Consent]:
        """(phone id, purpose) -> the latest SMS consent row of each of these phones."""
        latest: dict[tuple[int, str], Consent] = {}
        for chunk in chunks(sorted(set(phone_ids))):
            query = (
                select(Consent)
                .where(one_of(self.session, Consent.phone_id, chunk), Consent.channel == "sms")
                .order_by(Consent.id)
            )
            for row in self.session.scalars(query):
                latest[(row.phone_id, row.purpose)] = row  # ordered by id: the last one wins
        return latest

    # --- matching one DMS customer, in memory -------------------------------------------

    def resolve(self, dms_customer: DmsCustomer) -> Customer:
        """The page's customer for this DMS customer (pending until the next flush if new)."""
        with self.session.no_autoflush:
            phones = [self._phone(p) for p in dms_customer.phones]
            customer = self.by_ref.get(dms_customer.external_id)
            if customer is None:
                customer = self._same_person(dms_customer, phones)
                if customer is None:
                    customer = Customer(group_id=self.group.id)
                    self.session.add(customer)
                self.session.add(
                    CustomerRef(
                        customer=customer,
                        source=self.source,
                        external_id=dms_customer.external_id,
                        rooftop_id=self.rooftop.id,
                    )
                )
                self.by_ref[dms_customer.external_id] = customer
            _update_details(customer, dms_customer)
            self._link_phones(customer, phones)
            self._carry_dms_consent(customer, phones, dms_customer)
        return customer

    def _phone(self, dms_phone: DmsPhone) -> Phone:
        e164, reason = self._normalised(dms_phone.number)
        if e164 is None:
            # Unparseable numbers are kept per customer (linked in _link_phones), never shared.
            return Phone(
                group_id=self.group.id,
                e164=None,
                as_typed=dms_phone.number[:64],
                kind=dms_phone.kind,
                textable=False,
                not_textable_reason=reason,
            )
        phone = self.phones[e164]
        if phone.kind is None and dms_phone.kind is not None:
            phone.kind = dms_phone.kind
        return phone

    def _same_person(self, dms_customer: DmsCustomer, phones: list[Phone]) -> Customer | None:
        wanted = name_key(dms_customer.first_name, dms_customer.last_name)
        if not wanted:
            return None
        # Mobiles first: a shared landline says less about identity than a mobile does.
        for phone in sorted(phones, key=lambda p: p.kind != "mobile"):
            if phone.e164 is None:
                continue
            for candidate in self.on_phone.get(phone.e164, ()):
                if name_key(candidate.first_name, candidate.last_name) == wanted:
                    return candidate
        return None

    def _link_phones(self, customer: Customer, phones: list[Phone]) -> None:
        linked = {link.phone for link in customer.phone_links}
        typed = {phone.as_typed for phone in linked if phone.e164 is None}
        has_primary = any(link.is_primary for link in customer.phone_links)
        for phone in phones:
            if phone.e164 is None:
                if phone.as_typed in typed:
                    continue  # this unparseable number is already on file for them
                typed.add(phone.as_typed)
            if phone in linked:
                continue
            primary = not has_primary and phone.textable
            has_primary = has_primary or primary
            link = CustomerPhone(kind=phone.kind, is_primary=primary)
            link.phone = phone
            customer.phone_links.append(link)
            linked.add(phone)
            if phone.e164 is not None:
                household = self.on_phone.setdefault(phone.e164, [])
                if customer not in household:
                    household.append(customer)  # later records of the page match on it

    def _carry_dms_consent(
        self, customer: Customer, phones: Iterable[Phone], dms_customer: DmsCustomer
    ) -> None:
        """Append the DMS's consent fields to the ledger, only where they change its state.

        A DMS grant never overrides a revocation that came from elsewhere (the customer's
        STOP, a carrier opt-out, an advisor): a checkbox in the DMS is not the customer
        saying START.
        """
        source = f"dms:{self.rooftop.slug}"
        wanted = {"status": dms_customer.sms_consent, "marketing": dms_customer.marketing_consent}
        for phone in phones:
            if phone.e164 is None or phone.id is None:
                continue
            for purpose, value in wanted.items():
                if value is None:
                    continue
                latest = self.latest.get((phone.id, purpose))
                current = None if latest is None else latest.action == "granted"
                if current == value:
                    continue
                if value and latest is not None and not latest.source.startswith("dms:"):
                    continue
                self.latest[(phone.id, purpose)] = record_consent(
                    self.session,
                    phone=phone,
                    customer=customer,
                    channel="sms",
                    purpose=purpose,
                    action="granted" if value else "revoked",
                    source=source,
                )


def _update_details(customer: Customer, dms_customer: DmsCustomer) -> None:
    # Only what the DMS actually says replaces what we hold; a blank never erases.
    for attr in ("first_name", "last_name", "email", "language"):
        value = getattr(dms_customer, attr)
        if value is not None and getattr(customer, attr) != value:
            setattr(customer, attr, value)


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
    if customer is not None and customer.id is None:
        row.customer = customer  # a page's new customer, not flushed yet: the flush sets the id
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
