"""Status texts from repair-order changes: one message per RO per stage.

`on_repair_order_change` is a ChangeHook: the DMS poller calls it in the same
transaction as the change, so the outbox row commits with the change or not at
all. The body is rendered here, at enqueue time, so the record shows exactly
what the customer will read.

Which stages text the customer:
- checked_in: welcome (advisor, how to reply, how to opt out)
- awaiting_approval: the lines awaiting approval, their total, "reply YES"
- awaiting_parts: with the new promised time when the DMS has one
- in_repair: work started
- ready_for_pickup: store hours and what to bring
- diagnosing and quality_check: nothing. They are short internal steps; a text
  for each would spend the customer's daily cap on news they cannot act on.
- closed and canceled: nothing (follow-ups have their own rules); pending status
  texts for the RO are superseded, as they are by any newer stage.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.customer_page.links import link_for_text
from app.customers.models import Customer
from app.db import utcnow
from app.dealers.models import Rooftop
from app.messaging.channels import choose_channel, primary_phone, recipient_for
from app.messaging.first_text import is_first_text, with_first_text_notice
from app.messaging.line_names import line_name
from app.messaging.models import OutboundMessage
from app.messaging.policies import CAP_EXEMPT_STAGES, daily_cap_hold
from app.messaging.service import MessageRequest, enqueue, supersede_pending_status
from app.messaging.templates import (
    LANGUAGES,
    format_local_time,
    format_money,
    localised_store_hours,
    render,
)
from app.repair_orders.changes import RepairOrderChange
from app.repair_orders.models import RepairOrder

log = logging.getLogger(__name__)

STAGE_TEMPLATES = {
    "checked_in": "checked_in",
    "awaiting_approval": "awaiting_approval",
    "awaiting_parts": "awaiting_parts",
    "in_repair": "in_repair",
    "ready_for_pickup": "ready_for_pickup",
}
ENDING_STAGES = ("closed", "canceled")
# A status text older than this is news the customer no longer needs.
STATUS_TTL = timedelta(hours=18)
STAGE_TTL = {"ready_for_pickup": timedelta(days=3), "awaiting_approval": timedelta(hours=36)}
_NO_NAME = {"en": "there", "es": "estimado cliente", "fr": "cher client"}


def status_dedupe_key(ro_id: int, stage: str) -> str:
    """The outbox key that makes a stage text once per RO."""
    return f"ro:{ro_id}:stage:{stage}"


def customer_language(customer: Customer | None, rooftop: Rooftop) -> str:
    """The customer's language when we have templates for it, else the rooftop's."""
    if customer is not None and customer.preferred_language:
        language = customer.preferred_language.lower()[:2]
        if language in LANGUAGES:
            return language
    return rooftop.settings.language


def status_context(
    *, ro: RepairOrder, rooftop: Rooftop, customer: Customer | None, language: str
) -> dict[str, Any]:
    """Everything a status template may use; every key is always present (StrictUndefined)."""
    config = rooftop.settings
    pending = [line for line in ro.lines if line.status == "pending"]
    total = sum(line.amount_cents for line in pending)
    return {
        "first_name": (customer.first_name if customer else None) or _NO_NAME.get(language, ""),
        "rooftop_name": rooftop.name,
        "advisor_name": ro.advisor_name,
        "ro_number": ro.ro_number,
        "vehicle": ro.vehicle.label if ro.vehicle else "vehicle",
        "promised_time": format_local_time(ro.promised_at, config.zone, language),
        "store_hours": localised_store_hours(config.store_hours, language),
        "store_phone": rooftop.service_desk or rooftop.sms_from,
        "items": [
            {
                "description": line_name(line.description, language),
                "amount": format_money(line.amount_cents),
            }
            for line in pending
        ],
        "total": format_money(total) if pending else None,
    }


def whatsapp_variables(context: dict[str, Any]) -> dict[str, str]:
    """ContentVariables for an approved WhatsApp template, by the documented convention.

    "1" first name, "2" vehicle, "3" RO number, "4" rooftop name, "5" promised
    time (or store hours when there is none). Approve templates with these slots.
    """
    return {
        "1": str(context["first_name"]),
        "2": str(context["vehicle"]),
        "3": str(context["ro_number"]),
        "4": str(context["rooftop_name"]),
        "5": str(context["promised_time"] or context["store_hours"]),
    }


def on_repair_order_change(session: Session, change: RepairOrderChange) -> None:
    """Queue the status text for the RO's new stage (a ChangeHook; never commits).

    A moved promised time alone is the watchdog's news, unless the daily cap held this
    stage's text: then `tell_latest_state` sends both in one text.
    """
    if change.stage_changed:
        _stage_text(session, change)
    elif change.promised_changed:
        tell_latest_state(session, change)


def _stage_text(session: Session, change: RepairOrderChange) -> None:
    ro, rooftop, stage = change.ro, change.rooftop, change.ro.stage
    if stage in ENDING_STAGES:
        supersede_pending_status(session, repair_order_id=ro.id, reason=f"repair order {stage}")
        return
    kind = STAGE_TEMPLATES.get(stage)
    if kind is None:
        return
    key = status_dedupe_key(ro.id, stage)
    if session.scalar(select(OutboundMessage.id).where(OutboundMessage.dedupe_key == key)):
        return  # this stage already texted (or is queued): once per RO per stage
    message = _enqueue_status(session, ro=ro, rooftop=rooftop, stage=stage, kind=kind, key=key)
    if message is not None:
        supersede_pending_status(
            session,
            repair_order_id=ro.id,
            reason=f"superseded by {stage} (message {message.id})",
            keep_id=message.id,
        )


def promised_dedupe_key(ro_id: int, promised_at: datetime) -> str:
    """The key of the "your ready time changed" notice (app.followups.watchdog)."""
    return f"ro:{ro_id}:promised:{promised_at.isoformat()}"


def tell_latest_state(session: Session, change: RepairOrderChange) -> OutboundMessage | None:
    """The daily cap keeps the message that matters.

    When the cap holds (or held until it went stale) the text for the RO's current stage
    and the DMS then moves the promised time, the exempt "ready time changed" notice
    alone would tell the customer a new time without the stage that explains it. One
    text goes out instead: the stage's text with the new ready time ("waiting on parts;
    new estimated ready time 5 PM"), under the notice's key, so the watchdog sends no
    second one, and like the notice not held by the cap. The held text is superseded,
    and its reason says where its news went.
    """
    ro, rooftop = change.ro, change.rooftop
    # The watchdog's own conditions for the notice: a moved (not a first) time, still ahead.
    if ro.promised_at is None or change.previous_promised_at is None:
        return None
    if ro.promised_at <= change.at:
        return None
    kind = STAGE_TEMPLATES.get(ro.stage)
    if kind is None or ro.stage in CAP_EXEMPT_STAGES:
        return None
    held = session.scalar(
        select(OutboundMessage).where(
            OutboundMessage.dedupe_key == status_dedupe_key(ro.id, ro.stage)
        )
    )
    if held is None:
        return None
    why = daily_cap_hold(session, message=held, rooftop=rooftop.settings, now=change.at)
    if why is None:
        return None
    message = _enqueue_status(
        session,
        ro=ro,
        rooftop=rooftop,
        stage=ro.stage,
        kind=kind,
        key=promised_dedupe_key(ro.id, ro.promised_at),
        message_kind="watchdog",
        expires_at=ro.promised_at,
    )
    if message is None or message.state != "pending":
        return message
    if held.state == "pending":
        held.state = "superseded"
    cap = why.split(":")[0].split(";")[0]
    held.suppressed_reason = (
        f"{cap}; sent instead with the new ready time in message {message.id}"
    )[:200]
    return message


def _enqueue_status(
    session: Session,
    *,
    ro: RepairOrder,
    rooftop: Rooftop,
    stage: str,
    kind: str,
    key: str,
    message_kind: str = "status",
    expires_at: datetime | None = None,
) -> OutboundMessage | None:
    customer = session.get(Customer, ro.customer_id) if ro.customer_id else None
    now = utcnow()
    base: dict[str, Any] = {
        "rooftop_id": rooftop.id,
        "customer_id": customer.id if customer else None,
        "kind": message_kind,
        "purpose": "status",
        "dedupe_key": key,
        "repair_order_id": ro.id,
        "stage": stage,
        "not_before": now,
        "expires_at": expires_at or now + STAGE_TTL.get(stage, STATUS_TTL),
    }
    if customer is None or customer.erased_at is not None:
        return _unsendable(session, base, "repair order has no customer to text")
    phone = primary_phone(session, customer_id=customer.id)
    if phone is None:
        return _unsendable(session, base, "customer has no textable phone on file")
    config = rooftop.settings
    language = customer_language(customer, rooftop)
    context = status_context(ro=ro, rooftop=rooftop, customer=customer, language=language)
    page = link_for_text(session, ro=ro, customer=customer, purpose="status", now=now)
    context["page_link"] = page.url
    try:
        body = render(kind, language=language, context=context, overrides=config.templates)
    except TemplateError as exc:
        log.error("rooftop %s: template %s.%s failed: %s", rooftop.slug, kind, language, exc)
        page.settle(session, None)
        reason = f"template {kind}.{language} failed: {exc}; fix the rooftop's templates"
        return _unsendable(session, {**base, "phone_id": phone.id}, reason)
    if is_first_text(session, phone_id=phone.id, rooftop_id=rooftop.id):
        body = with_first_text_notice(body, rooftop=rooftop, language=language)
    recipient = recipient_for(
        phone, rooftop, choose_channel(session, customer=customer, rooftop=rooftop)
    )
    content_sid = config.whatsapp_templates.get(stage) if recipient.channel == "whatsapp" else None  # type: ignore[call-overload]
    message = enqueue(
        session,
        MessageRequest(
            **base,
            phone_id=phone.id,
            body=body,
            template=f"{kind}.{language}",
            channel=recipient.channel,
            to_address=recipient.to_address,
            content_sid=content_sid,
            content_variables=whatsapp_variables(context) if content_sid else None,
        ),
    )
    if message is not None:
        message.from_address = recipient.from_address
    page.settle(session, message.id if message is not None else None)
    return message


def _unsendable(session: Session, base: dict[str, Any], reason: str) -> OutboundMessage | None:
    """Keep a suppressed row, so the advisor board can say why the customer was not told."""
    base.setdefault("phone_id", None)
    message = enqueue(session, MessageRequest(**base))
    if message is not None:
        message.state = "suppressed"
        message.suppressed_reason = reason
    return message
