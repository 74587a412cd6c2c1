"""The customers a page of DMS records makes, kept in memory while the page is matched
(`app.customers.book`) and then written together: one INSERT per table (customers,
their references, phone links and consent rows), not an ORM object per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app import bulk
from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.db import chunks, one_of, utcnow

CUSTOMER_TABLE = cast(Table, Customer.__table__)
REF_TABLE = cast(Table, CustomerRef.__table__)
LINK_TABLE = cast(Table, CustomerPhone.__table__)
CONSENT_TABLE = cast(Table, Consent.__table__)


@dataclass(eq=False)
class NewLink:
    phone: Phone
    kind: str | None
    is_primary: bool


@dataclass(eq=False)
class NewCustomer:
    """A customer this page makes, in memory until `CustomerBook.match` writes the page's
    new customers together (one INSERT per table, not an ORM object per row)."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    language: str | None = None
    refs: list[str] = field(default_factory=list)  # the DMS's external ids
    phone_links: list[NewLink] = field(default_factory=list)
    consents: list[tuple[Phone, str, str, str]] = field(default_factory=list)
    customer: Customer | None = None  # once written


def write_new_customers(
    session: Session, new: Sequence[NewCustomer], *, group_id: int, rooftop_id: int, source: str
) -> None:
    """Insert the page's new customers, then their references, phone links and consent
    rows, one statement per table; the customers come back as ORM objects (one query),
    so the page's hooks find them in the session."""
    if not new:
        return
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "group_id": group_id,
            "first_name": n.first_name,
            "last_name": n.last_name,
            "email": n.email,
            "language": n.language,
            "created_at": now,
            "updated_at": now,
        }
        for n in new
    ]
    ids = bulk.insert_returning_ids(session, CUSTOMER_TABLE, rows)
    by_id = dict(zip(ids, new, strict=True))
    refs = [
        {
            "customer_id": customer_id,
            "source": source,
            "external_id": external_id,
            "rooftop_id": rooftop_id,
            "created_at": now,
        }
        for customer_id, n in by_id.items()
        for external_id in n.refs
    ]
    links = [
        {
            "customer_id": customer_id,
            "phone_id": link.phone.id,
            "kind": link.kind,
            "is_primary": link.is_primary,
        }
        for customer_id, n in by_id.items()
        for link in n.phone_links
    ]
    consents = [
        {
            "group_id": group_id,
            "phone_id": phone.id,
            "customer_id": customer_id,
            "channel": "sms",
            "purpose": purpose,
            "action": action,
            "source": source[:40],
            "at": now,
        }
        for customer_id, n in by_id.items()
        for phone, purpose, action, source in n.consents
    ]
    bulk.insert_rows(session, REF_TABLE, refs)
    bulk.insert_rows(session, LINK_TABLE, links)
    bulk.insert_rows(session, CONSENT_TABLE, consents)
    for chunk in chunks(ids):
        for customer in session.scalars(
            select(Customer).where(one_of(session, Customer.id, chunk))
        ):
            by_id[customer.id].customer = customer
