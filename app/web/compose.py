"""Texting a customer from their page or an RO's page, whether or not they wrote first.

The text goes through the outbox like any other, so consent and quiet hours still
apply; they are asked here too, at once, so the advisor reads why a text is held
or will not go out before leaving the page (the dispatcher asks again when it sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.customers.models import Customer
from app.dealers.models import Rooftop
from app.messaging.channels import (
    choose_channel,
    primary_phone,
    recipient_for,
    whatsapp_window_open,
)
from app.messaging.models import OutboundMessage
from app.messaging.outcomes import apply_verdict
from app.messaging.policies import consent_verdict, quiet_hours_verdict
from app.messaging.rules import STAGE_TEMPLATES, customer_language, status_context
from app.messaging.service import MessageRequest, enqueue
from app.messaging.templates import render
from app.repair_orders.models import RepairOrder

MAX_LENGTH = 1600

# Short answers an advisor sends often, in each language a customer may read.
QUICK_REPLIES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        (
            "Still working on it",
            "We're still working on your {vehicle}; I'll text you as soon as it's ready.",
        ),
        (
            "Please call me",
            "Could you give me a call at {store_phone} when you have a minute? Thanks, {advisor}.",
        ),
        ("Ready for pickup", "Good news: your {vehicle} is ready for pickup. See you soon!"),
        ("Thanks", "Thank you! Let me know if there's anything else."),
    ),
    "es": (
        (
            "Seguimos trabajando",
            "Seguimos trabajando en su {vehicle}; le escribo en cuanto esté listo.",
        ),
        (
            "Llámeme, por favor",
            "¿Podría llamarme al {store_phone} cuando tenga un momento? Gracias, {advisor}.",
        ),
        (
            "Listo para recoger",
            "Buenas noticias: su {vehicle} está listo para recoger. ¡Hasta pronto!",
        ),
        ("Gracias", "¡Gracias! Avíseme si necesita algo más."),
    ),
    "fr": (
        (
            "Toujours en cours",
            "Nous travaillons toujours sur votre {vehicle} ; je vous écris dès qu'il est prêt.",
        ),
        (
            "Rappelez-moi",
            "Pourriez-vous m'appeler au {store_phone} dès que possible ? Merci, {advisor}.",
        ),
        ("Prêt", "Bonne nouvelle : votre {vehicle} est prêt. À bientôt !"),
        ("Merci", "Merci ! Dites-moi si vous avez besoin d'autre chose."),
    ),
}


class ComposeRefused(ValueError):
    """The text cannot be queued (no textable phone, an empty text); the message says why."""


@dataclass(frozen=True)
class QuickReply:
    name: str
    body: str


@dataclass(frozen=True)
class Queued:
    message: OutboundMessage
    held: str | None  # why it is held or will not go out; None when it goes out now


def quick_replies(
    session: Session, *, customer: Customer, rooftop: Rooftop, ro: RepairOrder | None, advisor: str
) -> list[QuickReply]:
    """What the advisor can pick: the RO's current status text first, then short answers."""
    language = customer_language(customer, rooftop)
    picks = []
    if ro is not None and ro.stage in STAGE_TEMPLATES:
        context = status_context(ro=ro, rooftop=rooftop, customer=customer, language=language)
        try:
            body = render(
                STAGE_TEMPLATES[ro.stage],
                language=language,
                context=context,
                overrides=rooftop.settings.templates,
            )
            picks.append(QuickReply(f"Status: {ro.stage.replace('_', ' ')}", body))
        except TemplateError:
            pass  # a broken override: the short answers still work
    vehicle = ro.vehicle.label if ro is not None and ro.vehicle else None
    return picks + short_answers(
        customer=customer, rooftop=rooftop, vehicle=vehicle, advisor=advisor
    )


def short_answers(
    *, customer: Customer | None, rooftop: Rooftop, vehicle: str | None, advisor: str
) -> list[QuickReply]:
    """The short answers, in the customer's language (the rooftop's for an unknown caller)."""
    language = customer_language(customer, rooftop)
    values = {
        "vehicle": vehicle or {"es": "vehículo", "fr": "véhicule"}.get(language, "vehicle"),
        "store_phone": rooftop.service_desk or rooftop.sms_from or "",
        "advisor": advisor,
    }
    return [
        QuickReply(name, text.format(**values))
        for name, text in QUICK_REPLIES.get(language, QUICK_REPLIES["en"])
    ]


def text_customer(
    session: Session,
    *,
    customer: Customer,
    rooftop: Rooftop,
    ro: RepairOrder | None,
    body: str,
    principal: Principal,
    request_id: str,
    now: datetime,
) -> Queued:
    """Queue the advisor's text; the same request id (a resubmitted form) queues it once."""
    text = body.strip()
    if not text:
        raise ComposeRefused("write a text before sending")
    if len(text) > MAX_LENGTH:
        raise ComposeRefused(f"a text is at most {MAX_LENGTH} characters; this one is {len(text)}")
    phone = primary_phone(session, customer_id=customer.id)
    if phone is None:
        raise ComposeRefused(f"{customer.display_name} has no textable phone on file; call them")
    channel = choose_channel(session, customer=customer, rooftop=rooftop)
    if channel == "whatsapp" and not whatsapp_window_open(
        session, customer_id=customer.id, phone_id=phone.id, now=now
    ):
        channel = "sms"  # free-form WhatsApp only within 24 h of the customer's last message
    recipient = recipient_for(phone, rooftop, channel)
    key = f"compose:{customer.id}:{request_id}"
    message = enqueue(
        session,
        MessageRequest(
            rooftop_id=rooftop.id,
            customer_id=customer.id,
            phone_id=phone.id,
            kind="reply",
            purpose="conversational",
            dedupe_key=key,
            body=text,
            repair_order_id=ro.id if ro is not None else None,
            channel=recipient.channel,
            to_address=recipient.to_address,
            not_before=now,
            created_by_user_id=principal.user_id,
        ),
    )
    if message is None:
        existing = session.scalar(select(OutboundMessage).where(OutboundMessage.dedupe_key == key))
        assert existing is not None
        return Queued(existing, existing.suppressed_reason)
    message.from_address = recipient.from_address
    config = rooftop.settings
    verdict = consent_verdict(session, message=message, rooftop=config) or quiet_hours_verdict(
        session, message=message, rooftop=config, recipient_e164=phone.e164, now=now
    )
    if verdict is not None:
        apply_verdict(message, verdict)
    return Queued(message, message.suppressed_reason)
