"""Wording and addressing of the messages follow-ups and the watchdog put in the outbox.

The texts are the outbound engine's templates (`templates/messages/followup.*`,
`running_late.*`, `new_promised_time.*`), rendered at enqueue time in the
customer's language with the rooftop's overrides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.customers.models import Customer, CustomerPhone, Phone
from app.dealers.models import Rooftop
from app.messaging import templates


def language_for(rooftop: Rooftop, customer: Customer | None) -> str:
    return (customer.preferred_language if customer else None) or rooftop.settings.language


def render(
    name: str, *, rooftop: Rooftop, customer: Customer | None, context: dict[str, Any]
) -> str:
    """Render message `name` in the customer's language, with the rooftop's overrides."""
    return templates.render(
        name,
        language=language_for(rooftop, customer),
        context={"rooftop_name": rooftop.name, **context},
        overrides=rooftop.settings.templates,
    )


def money(cents: int) -> str:
    """$1,234.50 from 123450."""
    return templates.format_money(cents)


def local_time(at: datetime, rooftop: Rooftop, customer: Customer | None = None) -> str:
    """'4:30 PM Tue Nov 24' in the rooftop's zone (DST-correct), in the customer's language."""
    return (
        templates.format_local_time(at, rooftop.settings.zone, language_for(rooftop, customer))
        or ""
    )


def store_phone(rooftop: Rooftop) -> str:
    number = rooftop.service_desk or rooftop.sms_from or ""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def textable_phone(session: Session, customer_id: int | None) -> Phone | None:
    """The customer's number to text: the primary textable one, else any textable one."""
    if customer_id is None:
        return None
    return session.scalar(
        select(Phone)
        .join(CustomerPhone, CustomerPhone.phone_id == Phone.id)
        .where(
            CustomerPhone.customer_id == customer_id,
            Phone.textable.is_(True),
            Phone.e164.is_not(None),
        )
        .order_by(CustomerPhone.is_primary.desc(), Phone.id)
        .limit(1)
    )


def first_name(customer: Customer | None) -> str:
    return (customer.first_name if customer and customer.first_name else "there").strip()
