"""Matching the customers a DMS gives us to the one Pitwall record per person.

In order:

1. The DMS's own id (`CustomerRef`: source + external id) is known: that customer.
2. A customer of the group has one of the same phone numbers (E.164) AND the same
   first and last name (ignoring case, accents and spacing): the same person,
   known to another rooftop under another id. They get a second reference.
3. Same phone, different name: a household. A NEW customer linked to the same
   `Phone` row; `phone_is_shared` / `customers_for_phone` say so, so that reply
   matching asks instead of guessing.
4. Otherwise a new customer.

A customer without any name never merges by phone: there is nothing to confirm it
is the same person. Phones are normalised as `app.customers.service` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, selectinload

from app import bulk
from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.customers.new_customers import NewCustomer, NewLink, write_new_customers
from app.customers.service import name_key, normalise_phone, record_consent
from app.db import chunks, one_of, utcnow
from app.dealers.models import DealerGroup, Rooftop
from integrations.dms.base import DmsCustomer, DmsPhone

PHONE_TABLE = cast(Table, Phone.__table__)


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
    return book.match([dms_customer])[0]


Found = Customer | NewCustomer


class CustomerBook:
    """The customers of one page of DMS records, matched together.

    Everything the matching rules (module docstring) consult is read up front, in a
    handful of set-based queries for the whole page: the DMS ids already on file, the
    group's phones (new numbers inserted in one statement), the customers on those
    phones and the latest consent of each. Each customer is then matched in memory,
    seeing what the page's earlier ones made: the same person twice in a page is one
    customer, a household two. Changes to customers on file go through the ORM (a
    page has few); the page's new customers, their references, phone links and consent
    rows are written set-based (`app.bulk`): a first poll of 1,000 new ROs spent 44% of
    its time flushing those 5,000 ORM objects on PostgreSQL.
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
        self._new: list[NewCustomer] = []
        with session.no_autoflush:
            self.by_ref: dict[str, Found] = dict(self._read_refs({c.external_id for c in wanted}))
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

    def match(self, dms_customers: Sequence[DmsCustomer]) -> list[Customer]:
        """The Pitwall customer of each DMS customer, in order, written (flushed)."""
        found = [self._resolve(c) for c in dms_customers]
        self.session.flush()  # changes to customers on file, new unparseable phones
        new, self._new = self._new, []
        write_new_customers(
            self.session,
            new,
            group_id=self.group.id,
            rooftop_id=self.rooftop.id,
            source=self.source,
        )
        return [f if isinstance(f, Customer) else cast(Customer, f.customer) for f in found]

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
            bulk.insert_rows(
                self.session, PHONE_TABLE, list(missing.values()), unless_taken=("group_id", "e164")
            )
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

    def _read_households(self, numbers: set[str]) -> dict[str, list[Found]]:
        """E.164 -> the group's customers on it, oldest first (`customers_for_phone`)."""
        found: dict[str, list[Found]] = {}
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

    def _read_consents(self, phone_ids: list[int]) -> dict[tuple[int, str], tuple[str, str]]:
        """(phone id, purpose) -> (action, source) of the latest SMS consent row."""
        latest: dict[tuple[int, str], tuple[str, str]] = {}
        for chunk in chunks(sorted(set(phone_ids))):
            query = (
                select(Consent.phone_id, Consent.purpose, Consent.action, Consent.source)
                .where(one_of(self.session, Consent.phone_id, chunk), Consent.channel == "sms")
                .order_by(Consent.id)
            )
            for phone_id, purpose, action, source in self.session.execute(query):
                latest[(phone_id, purpose)] = (action, source)  # by id: the last one wins
        return latest

    # --- matching one DMS customer, in memory -------------------------------------------

    def _resolve(self, dms_customer: DmsCustomer) -> Found:
        """The page's customer for this DMS customer (a `NewCustomer` until written)."""
        with self.session.no_autoflush:
            phones = [self._phone(p) for p in dms_customer.phones]
            customer = self.by_ref.get(dms_customer.external_id)
            if customer is None:
                customer = self._same_person(dms_customer, phones)
                if customer is None:
                    customer = NewCustomer()
                    self._new.append(customer)
                if isinstance(customer, NewCustomer):
                    customer.refs.append(dms_customer.external_id)
                else:
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

    def _same_person(self, dms_customer: DmsCustomer, phones: list[Phone]) -> Found | None:
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

    def _link_phones(self, customer: Found, phones: list[Phone]) -> None:
        links: Sequence[CustomerPhone | NewLink] = customer.phone_links
        linked = {link.phone for link in links}
        typed = {phone.as_typed for phone in linked if phone.e164 is None}
        has_primary = any(link.is_primary for link in links)
        for phone in phones:
            if phone.e164 is None:
                if phone.as_typed in typed:
                    continue  # this unparseable number is already on file for them
                typed.add(phone.as_typed)
            if phone in linked:
                continue
            primary = not has_primary and phone.textable
            has_primary = has_primary or primary
            if isinstance(customer, NewCustomer):
                if phone.id is None:
                    self.session.add(phone)  # an unparseable number: flushed before the links
                customer.phone_links.append(NewLink(phone, phone.kind, primary))
            else:
                link = CustomerPhone(kind=phone.kind, is_primary=primary)
                link.phone = phone
                customer.phone_links.append(link)
            linked.add(phone)
            if phone.e164 is not None:
                household = self.on_phone.setdefault(phone.e164, [])
                if customer not in household:
                    household.append(customer)  # later records of the page match on it

    def _carry_dms_consent(
        self, customer: Found, phones: Iterable[Phone], dms_customer: DmsCustomer
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
                current = None if latest is None else latest[0] == "granted"
                if current == value:
                    continue
                if value and latest is not None and not latest[1].startswith("dms:"):
                    continue
                action = "granted" if value else "revoked"
                if isinstance(customer, NewCustomer):
                    customer.consents.append((phone, purpose, action, source))
                else:
                    record_consent(
                        self.session,
                        phone=phone,
                        customer=customer,
                        channel="sms",
                        purpose=purpose,
                        action=action,
                        source=source,
                    )
                self.latest[(phone.id, purpose)] = (action, source)


def _update_details(customer: Found, dms_customer: DmsCustomer) -> None:
    # Only what the DMS actually says replaces what we hold; a blank never erases.
    for attr in ("first_name", "last_name", "email", "language"):
        value = getattr(dms_customer, attr)
        if value is not None and getattr(customer, attr) != value:
            setattr(customer, attr, value)
