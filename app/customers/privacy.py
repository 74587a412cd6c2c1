"""A customer's right to be forgotten, and the consent ledger as an auditor reads it.

`erase_customer` removes what identifies a person and keeps what the reports count:

- the customer row stays as an anonymous stub (`erased_at` set, no name or email),
  so repair orders, follow-up plans, recoveries, tasks and calls keep their links
  and every report total is unchanged;
- their DMS references and phone links go; a phone no other customer uses is
  deleted with its consent rows, except a number whose latest consent on some
  channel is a revocation: the bare number and the ledger stay, or the next DMS
  import could text someone who said STOP;
- message bodies to and from them, inbound forms, replies, task summaries, call
  numbers and quarantined DMS payloads of their repair orders become "[erased]";
  messages not yet sent to them are cancelled.

`consent_csv` writes the ledger of a group or a rooftop, numbers masked unless
asked for in full.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, delete, or_, select, update
from sqlalchemy.orm import Session

from app.conversations.models import Call, InboundMessage, Task
from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import QuarantinedRecord, RepairOrder

ERASED = "[erased]"
CONSENT_COLUMNS = ("at", "phone", "channel", "purpose", "action", "source", "detail")
_E164 = re.compile(r"^\+\d{6,15}$")


class CustomerNotFound(LookupError):
    """No such customer in this group."""


@dataclass(frozen=True)
class ErasureReport:
    """What `erase_customer` changed, for the operator and the audit trail."""

    customer_id: int
    phones_deleted: int
    phones_kept_for_opt_out: int
    refs_deleted: int
    outbound_erased: int
    outbound_canceled: int
    inbound_erased: int
    calls_erased: int
    tasks_erased: int
    quarantined_erased: int


def erase_customer(
    session: Session, *, customer_id: int, at: datetime, group_id: int | None = None
) -> ErasureReport:
    """Remove a customer's personal data everywhere; keep anonymous rows for the reports.

    `group_id`, when given, must be the customer's group (else CustomerNotFound),
    so an API caller cannot erase another tenant's customer. Erasing twice is harmless.
    """
    customer = session.get(Customer, customer_id)
    if customer is None or (group_id is not None and customer.group_id != group_id):
        raise CustomerNotFound(f"no customer {customer_id} in this dealer group")
    phone_ids = list(
        session.scalars(
            select(CustomerPhone.phone_id).where(CustomerPhone.customer_id == customer_id)
        )
    )
    shared = set(
        session.scalars(
            select(CustomerPhone.phone_id).where(
                CustomerPhone.phone_id.in_(phone_ids), CustomerPhone.customer_id != customer_id
            )
        )
    )
    own = [pid for pid in phone_ids if pid not in shared]
    own_phones = list(session.scalars(select(Phone).where(Phone.id.in_(own))))
    numbers = {p.e164 for p in own_phones if p.e164} | {p.as_typed for p in own_phones}
    addresses = numbers | {f"whatsapp:{n}" for n in numbers}

    outbound_of_theirs = or_(
        OutboundMessage.customer_id == customer_id,
        OutboundMessage.phone_id.in_(own),
        OutboundMessage.to_address.in_(addresses),
    )
    canceled = _changed(
        session,
        update(OutboundMessage)
        .where(outbound_of_theirs, OutboundMessage.state == "pending")
        .values(state="canceled", suppressed_reason="customer erased", updated_at=at),
    )
    outbound = _changed(
        session,
        update(OutboundMessage)
        .where(outbound_of_theirs)
        .values(
            body=ERASED,
            content_variables=None,
            to_address=None,
            phone_id=None,
            error_message=None,
            updated_at=at,
        ),
    )

    inbound_ids = list(
        session.scalars(
            select(InboundMessage.id).where(
                or_(
                    InboundMessage.customer_id == customer_id,
                    InboundMessage.phone_id.in_(own),
                    InboundMessage.from_address.in_(addresses),
                )
            )
        )
    )
    # reply_body keeps being non-null: the conversation report counts answered texts by it.
    for row in session.scalars(select(InboundMessage).where(InboundMessage.id.in_(inbound_ids))):
        row.body = ERASED
        row.from_address = ERASED
        row.raw = None
        row.pending_choices = None
        row.phone_id = None
        row.reply_body = ERASED if row.reply_body is not None else None

    call_ids = list(
        session.scalars(
            select(Call.id).where(
                or_(Call.customer_id == customer_id, Call.from_address.in_(addresses))
            )
        )
    )
    calls = _changed(
        session,
        update(Call).where(Call.id.in_(call_ids)).values(from_address=ERASED, answer_twiml=None),
    )
    tasks = _changed(
        session,
        update(Task)
        .where(
            or_(
                Task.customer_id == customer_id,
                Task.inbound_message_id.in_(inbound_ids),
                Task.call_id.in_(call_ids),
            )
        )
        .values(summary=ERASED),
    )
    ro_numbers = select(RepairOrder.ro_number).where(RepairOrder.customer_id == customer_id)
    quarantined = _changed(
        session,
        update(QuarantinedRecord)
        .where(
            QuarantinedRecord.ro_number.in_(ro_numbers),
            QuarantinedRecord.rooftop_id.in_(
                select(RepairOrder.rooftop_id).where(RepairOrder.customer_id == customer_id)
            ),
        )
        .values(payload=ERASED),
    )
    # The DMS's customer data may change again: let the next import match afresh.
    _changed(
        session,
        update(RepairOrder)
        .where(RepairOrder.customer_id == customer_id)
        .values(customer_hash=None),
    )

    refs = _changed(session, delete(CustomerRef).where(CustomerRef.customer_id == customer_id))
    _changed(session, delete(CustomerPhone).where(CustomerPhone.customer_id == customer_id))
    _changed(
        session,
        update(Consent)
        .where(or_(Consent.customer_id == customer_id, Consent.phone_id.in_(own)))
        .values(customer_id=None, detail=None),
    )
    kept = [p for p in own_phones if _opted_out(session, p.id)]
    for phone in kept:
        phone.as_typed = phone.e164 or ERASED
    deleted = [p.id for p in own_phones if p not in kept]
    _changed(session, delete(Consent).where(Consent.phone_id.in_(deleted)))
    _changed(session, delete(Phone).where(Phone.id.in_(deleted)))

    customer.first_name = None
    customer.last_name = None
    customer.email = None
    customer.erased_at = customer.erased_at or at
    session.flush()
    session.expire_all()  # bulk updates bypassed the identity map
    return ErasureReport(
        customer_id=customer_id,
        phones_deleted=len(deleted),
        phones_kept_for_opt_out=len(kept),
        refs_deleted=refs,
        outbound_erased=outbound,
        outbound_canceled=canceled,
        inbound_erased=len(inbound_ids),
        calls_erased=calls,
        tasks_erased=tasks,
        quarantined_erased=quarantined,
    )


def _changed(session: Session, statement: Executable) -> int:
    """Run a bulk UPDATE/DELETE (identity map untouched) and return how many rows it hit."""
    result = session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount)


def _opted_out(session: Session, phone_id: int) -> bool:
    """True when the latest ledger row of some channel/purpose of this phone is a revocation."""
    latest: dict[tuple[str, str], str] = {}
    for channel, purpose, action in session.execute(
        select(Consent.channel, Consent.purpose, Consent.action)
        .where(Consent.phone_id == phone_id)
        .order_by(Consent.id)
    ):
        latest[(channel, purpose)] = action
    return "revoked" in latest.values()


def consent_rows(
    session: Session, *, group_id: int, rooftop: Rooftop | None = None
) -> list[tuple[Consent, Phone]]:
    """The group's consent ledger, oldest first; for a rooftop, the numbers it deals with.

    A number belongs to a rooftop when a customer on it is known to that rooftop's DMS,
    or the number wrote to or was texted by that rooftop.
    """
    query = (
        select(Consent, Phone)
        .join(Phone, Phone.id == Consent.phone_id)
        .where(Consent.group_id == group_id)
        .order_by(Consent.at, Consent.id)
    )
    if rooftop is not None:
        known_by_dms = (
            select(CustomerPhone.phone_id)
            .join(CustomerRef, CustomerRef.customer_id == CustomerPhone.customer_id)
            .where(CustomerRef.rooftop_id == rooftop.id)
        )
        texted = select(OutboundMessage.phone_id).where(
            OutboundMessage.rooftop_id == rooftop.id, OutboundMessage.phone_id.is_not(None)
        )
        wrote = select(InboundMessage.phone_id).where(
            InboundMessage.rooftop_id == rooftop.id, InboundMessage.phone_id.is_not(None)
        )
        query = query.where(
            or_(
                Consent.phone_id.in_(known_by_dms),
                Consent.phone_id.in_(texted),
                Consent.phone_id.in_(wrote),
                Consent.source == f"dms:{rooftop.slug}",
            )
        )
    return [(consent, phone) for consent, phone in session.execute(query)]


def consent_csv(rows: Iterable[tuple[Consent, Phone]], *, full_numbers: bool = False) -> str:
    """CSV with CONSENT_COLUMNS; numbers masked (+1415555****) unless `full_numbers`."""
    from app.ops.logging import mask_phone_numbers

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CONSENT_COLUMNS)
    for consent, phone in rows:
        number = phone.e164 or phone.as_typed
        writer.writerow(
            [
                consent.at.isoformat(),
                number if full_numbers else mask_phone_numbers(number),
                consent.channel,
                consent.purpose,
                consent.action,
                _cell(consent.source),
                _cell(consent.detail or ""),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    # Details quote customers' texts: "=HYPERLINK(...)" must stay text in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _E164.match(text):
        return "'" + text
    return text
