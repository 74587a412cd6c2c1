"""Minting, resolving and revoking links to the customer's page.

A link is minted for each status text and follow-up as it is put in the outbox, so the
first open can be counted per message. Texts are rendered where no request is at hand
(the DMS poll, the follow-up job): the public base URL is set once per process
(`use_public_url`, called by the app factory and the worker) and read from the
environment otherwise, since it is one value per deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.customer_page.models import CustomerLink
from app.customer_page.tokens import PATH_PREFIX, looks_like_token, new_token, token_hash
from app.customers.models import Customer
from app.dealers.models import Rooftop
from app.repair_orders.models import RepairOrder

_public_url: str | None = None


def use_public_url(url: str) -> None:
    """The base every link is written under (PITWALL_PUBLIC_URL of this process)."""
    global _public_url
    _public_url = url.rstrip("/")


def public_url() -> str:
    """The base set by the app or the worker, else this process's settings (read once)."""
    global _public_url
    if _public_url is None:
        # Reading the environment into Settings costs ~100 us: never once per text.
        _public_url = Settings().public_url.rstrip("/")
    return _public_url


def mint_link(
    session: Session,
    *,
    ro: RepairOrder,
    customer: Customer,
    purpose: str,
    now: datetime,
) -> tuple[CustomerLink, str]:
    """A new link for this RO and customer; returns the row and the URL (the only copy)."""
    token = new_token()
    link = CustomerLink(
        token_hash=token_hash(token),
        rooftop_id=ro.rooftop_id,
        repair_order_id=ro.id,
        customer_id=customer.id,
        purpose=purpose,
        created_at=now,
        open_count=0,
    )
    session.add(link)
    return link, f"{public_url()}{PATH_PREFIX}{token}"


@dataclass(frozen=True)
class Resolved:
    """What a token leads to: a live link, or why not (and whose store, when known)."""

    link: CustomerLink | None
    ro: RepairOrder | None
    customer: Customer | None
    rooftop: Rooftop | None
    problem: str | None  # None | unknown | revoked | expired

    @property
    def ok(self) -> bool:
        return self.problem is None


def resolve(session: Session, token: str, *, now: datetime) -> Resolved:
    """Find the link a token names and decide whether it still opens."""
    if not looks_like_token(token):
        return Resolved(None, None, None, None, "unknown")
    link = session.scalar(select(CustomerLink).where(CustomerLink.token_hash == token_hash(token)))
    if link is None:
        return Resolved(None, None, None, None, "unknown")
    ro = session.get(RepairOrder, link.repair_order_id)
    rooftop = session.get(Rooftop, link.rooftop_id)
    customer = session.get(Customer, link.customer_id) if link.customer_id else None
    if link.revoked_at is not None:
        return Resolved(link, None, customer, rooftop, "revoked")
    if (
        ro is None
        or rooftop is None
        or customer is None
        or customer.erased_at is not None
        or ro.customer_id != link.customer_id  # the RO changed hands: the old link dies
        or not rooftop.active
    ):
        return Resolved(link, None, customer, rooftop, "expired")
    ends = expires_at(link, ro, rooftop)
    if ends is not None and now >= ends:
        return Resolved(link, None, customer, rooftop, "expired")
    return Resolved(link, ro, customer, rooftop, None)


def expires_at(link: CustomerLink, ro: RepairOrder, rooftop: Rooftop) -> datetime | None:
    """None while the RO is open; else the later of its close and the link's minting, plus days."""
    if ro.closed_at is None and ro.stage not in ("closed", "canceled"):
        return None
    closed = ro.closed_at or ro.updated_at
    days = timedelta(days=rooftop.settings.customer_page_days_after_close)
    return max(closed, link.created_at) + days


def record_open(link: CustomerLink, *, now: datetime) -> bool:
    """Count a visit; True when it is the first open of this message's link."""
    first = link.first_opened_at is None
    if first:
        link.first_opened_at = now
    link.last_opened_at = now
    link.open_count = (link.open_count or 0) + 1
    return first


def revoke_links(session: Session, *, repair_order_id: int, by: str, now: datetime) -> int:
    """Stop every link of an RO from opening; later texts carry fresh links. Returns how many."""
    result = session.execute(
        update(CustomerLink)
        .where(CustomerLink.repair_order_id == repair_order_id, CustomerLink.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by[:254])
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def live_link_count(session: Session, *, repair_order_id: int) -> int:
    """Links of an RO not revoked (whether or not they have expired)."""
    return len(
        session.scalars(
            select(CustomerLink.id).where(
                CustomerLink.repair_order_id == repair_order_id,
                CustomerLink.revoked_at.is_(None),
            )
        ).all()
    )


@dataclass
class TextLink:
    """A link minted for a text about to be queued: kept if the text is, dropped if not."""

    link: CustomerLink | None
    url: str | None

    def settle(self, session: Session, message_id: int | None) -> None:
        """Tie the link to its message, or forget it when no message was queued."""
        if self.link is None:
            return
        if message_id is None:
            if self.link in session:
                session.delete(self.link) if self.link.id else session.expunge(self.link)
            return
        self.link.outbound_message_id = message_id


def link_for_text(
    session: Session,
    *,
    ro: RepairOrder,
    customer: Customer | None,
    purpose: str,
    now: datetime,
) -> TextLink:
    """A fresh link for a status text or follow-up to this customer (none without one)."""
    if customer is None or customer.erased_at is not None or ro.customer_id != customer.id:
        return TextLink(None, None)
    link, url = mint_link(session, ro=ro, customer=customer, purpose=purpose, now=now)
    return TextLink(link, url)
