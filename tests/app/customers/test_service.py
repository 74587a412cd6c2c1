"""One customer per person per group: refs, households, phones as typed, consent."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.customers.book import CustomerBook, resolve_customer
from app.customers.models import Consent, Customer, CustomerRef, Phone
from app.customers.service import (
    current_consent,
    customers_for_phone,
    normalise_phone,
    phone_is_shared,
    record_consent,
    revoke_all,
)
from app.dealers.models import Rooftop
from app.deps import Database
from integrations.dms.base import DmsCustomer, DmsPhone
from tests.support import load_sample_dealer


@pytest.fixture
def shop(database: Database, session: Session) -> dict[str, Rooftop]:
    load_sample_dealer(database)
    return {r.slug: r for r in session.scalars(select(Rooftop))}


def resolve(session: Session, rooftop: Rooftop, customer: DmsCustomer) -> Customer:
    found = resolve_customer(
        session,
        group=rooftop.group,
        rooftop=rooftop,
        dms_customer=customer,
        source=f"dms:{rooftop.id}",
    )
    session.flush()
    return found


def sam(external_id: str, number: str = "(415) 555-0142", **kw: object) -> DmsCustomer:
    fields: dict = {
        "first_name": "Sam",
        "last_name": "Lee",
        "phones": (DmsPhone(number, "mobile"),),
    }
    fields.update(kw)
    return DmsCustomer(external_id=external_id, **fields)


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("(415) 555-0142", "+14155550142"), ("+44 20 7946 0958", "+442079460958"), ("12", None)],
)
def test_normalise_phone(typed: str, expected: str | None) -> None:
    e164, reason = normalise_phone(typed, "US")
    assert e164 == expected
    assert (reason is None) == (expected is not None)


def test_same_person_at_two_rooftops_is_one_customer_with_two_refs(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    toyota = resolve(session, shop["bayview-toyota"], sam("C-4411"))
    ford = resolve(
        session,
        shop["bayview-ford"],
        sam("F-9", "415.555.0142", first_name="  SÁM ", last_name="lee"),
    )
    assert ford.id == toyota.id
    assert sorted(r.external_id for r in session.scalars(select(CustomerRef))) == ["C-4411", "F-9"]
    assert count(session, Customer) == 1 and count(session, Phone) == 1
    assert resolve(session, shop["bayview-ford"], sam("F-9")).id == toyota.id  # known ref


def test_household_is_two_customers_sharing_one_phone(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    sam_lee = resolve(session, shop["bayview-toyota"], sam("C-1"))
    kim_lee = resolve(session, shop["bayview-toyota"], sam("C-2", first_name="Kim"))
    assert kim_lee.id != sam_lee.id
    phone = session.scalars(select(Phone)).one()
    assert phone_is_shared(session, phone.id)
    assert [
        c.id for c in customers_for_phone(session, group_id=phone.group_id, e164=phone.e164)
    ] == [
        sam_lee.id,
        kim_lee.id,
    ]


def test_a_phone_typed_five_ways_is_one_phone_row(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    typed = ["(415) 555-0142", "415.555.0142", "4155550142", "+1 415 555 0142", "1-415-555-0142"]
    customers = {
        resolve(session, shop["bayview-toyota"], sam(f"C-{i}", number)).id
        for i, number in enumerate(typed)
    }
    assert len(customers) == 1
    phone = session.scalars(select(Phone)).one()
    assert (phone.e164, phone.as_typed, phone.textable) == ("+14155550142", "(415) 555-0142", True)


def test_unparseable_phone_is_kept_but_never_textable(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    customer = resolve(
        session, shop["bayview-toyota"], sam("C-1", "call the shop", sms_consent=True)
    )
    resolve(session, shop["bayview-toyota"], sam("C-1", "call the shop", email="sam@example.com"))
    phone = session.scalars(select(Phone)).one()
    assert phone.e164 is None and not phone.textable and phone.as_typed == "call the shop"
    assert phone.not_textable_reason
    assert customer.email == "sam@example.com"
    assert count(session, Consent) == 0  # nothing to consent on an unusable number


def test_landline_is_stored_flagged_and_still_textable(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    resolve(session, shop["bayview-toyota"], sam("C-1", phones=(DmsPhone("415-555-0177", "home"),)))
    phone = session.scalars(select(Phone)).one()
    assert (phone.kind, phone.textable) == ("home", True)


def test_dms_consent_written_only_on_change_and_never_over_a_stop(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    toyota = shop["bayview-toyota"]
    resolve(session, toyota, sam("C-1", sms_consent=True, marketing_consent=None))
    resolve(session, toyota, sam("C-1", sms_consent=True, marketing_consent=None))
    assert count(session, Consent) == 1
    phone = session.scalars(select(Phone)).one()
    assert current_consent(session, phone_id=phone.id, channel="sms", purpose="status") is True
    assert current_consent(session, phone_id=phone.id, channel="sms", purpose="marketing") is None
    revoke_all(session, phone=phone, channel="sms", source="keyword")
    session.flush()
    resolve(session, toyota, sam("C-1", sms_consent=True, email="new@example.com"))
    assert current_consent(session, phone_id=phone.id, channel="sms", purpose="status") is False
    record_consent(
        session,
        phone=phone,
        customer=None,
        channel="sms",
        purpose="status",
        action="granted",
        source="keyword",
        detail="START",
    )
    session.flush()
    resolve(session, toyota, sam("C-1", sms_consent=False))
    assert current_consent(session, phone_id=phone.id, channel="sms", purpose="status") is False
    sources = [c.source for c in session.scalars(select(Consent).order_by(Consent.id))]
    assert sources == ["dms:bayview-toyota", "keyword", "keyword", "keyword", "dms:bayview-toyota"]


def test_nameless_customers_never_merge_by_phone(
    session: Session, shop: dict[str, Rooftop]
) -> None:
    a = resolve(session, shop["bayview-toyota"], sam("C-1", first_name=None, last_name=None))
    b = resolve(session, shop["bayview-toyota"], sam("C-2", first_name=None, last_name=None))
    assert a.id != b.id


def test_a_page_matches_its_customers_together(session: Session, shop: dict[str, Rooftop]) -> None:
    toyota = shop["bayview-toyota"]
    page = [
        sam("C-1", sms_consent=True),
        sam("C-2", "415.555.0142", first_name=" SÁM "),  # the same person under a second id
        sam("C-3", first_name="Kim"),  # a household: the same phone, another name
        sam("C-1", email="sam@example.com", sms_consent=True),  # a repeat of the first
        sam("C-4", "call the shop"),
        sam("C-4", "call the shop"),
    ]
    book = CustomerBook(
        session, group=toyota.group, rooftop=toyota, source=f"dms:{toyota.id}", customers=page
    )
    found = book.match(page)

    sam_lee, kim_lee, nobody = found[0], found[2], found[4]
    assert found[1] is sam_lee and found[3] is sam_lee and found[5] is nobody
    assert len({sam_lee.id, kim_lee.id, nobody.id}) == 3
    assert sam_lee.email == "sam@example.com"
    assert count(session, Customer) == 3 and count(session, CustomerRef) == 4
    phone = session.scalars(select(Phone).where(Phone.e164.is_not(None))).one()
    assert [
        c.id for c in customers_for_phone(session, group_id=phone.group_id, e164=phone.e164)
    ] == [
        sam_lee.id,
        kim_lee.id,
    ]
    assert count(session, Phone) == 2  # the unparseable number once, for its one customer
    consent = session.scalars(select(Consent)).one()  # granted once, however often repeated
    assert (consent.customer_id, consent.phone_id, consent.action) == (
        sam_lee.id,
        phone.id,
        "granted",
    )
