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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from jinja2 import TemplateError
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app.bulk import insert_returning_ids, insert_rows
from app.customer_page.links import public_url
from app.customer_page.models import CustomerLink
from app.customer_page.tokens import PATH_PREFIX, new_token, token_hash
from app.customers.models import Customer, Phone
from app.db import utcnow
from app.dealers.models import Rooftop
from app.messaging.channels import recipient_for
from app.messaging.first_text import texted_phones, with_first_text_notice
from app.messaging.line_names import line_name
from app.messaging.models import OutboundMessage
from app.messaging.page_facts import channels_for, customers_by_id, primary_phones
from app.messaging.policies import CAP_EXEMPT_STAGES, daily_cap_hold
from app.messaging.service import pending_status_messages, supersede, used_dedupe_keys
from app.messaging.templates import (
    LANGUAGES,
    format_local_time,
    format_money,
    localised_store_hours,
    render,
)
from app.repair_orders.changes import ForPage, RepairOrderChange
from app.repair_orders.models import RepairOrder

log = logging.getLogger(__name__)
OUTBOX_TABLE = cast(Table, OutboundMessage.__table__)
LINK_TABLE = cast(Table, CustomerLink.__table__)

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
    time (or store hours when there is none), "6" the customer's page link after
    ``PITWALL_PUBLIC_URL/c/``: WhatsApp lets a call-to-action button's URL end in one
    variable, so the template's button is ``<PITWALL_PUBLIC_URL>/c/{{6}}``. Approve
    templates with these slots (a template that leaves one out simply does not show it).
    """
    variables = {
        "1": str(context["first_name"]),
        "2": str(context["vehicle"]),
        "3": str(context["ro_number"]),
        "4": str(context["rooftop_name"]),
        "5": str(context["promised_time"] or context["store_hours"]),
    }
    if context.get("page_link"):
        variables["6"] = str(context["page_link"]).rsplit("/", 1)[1]
    return variables


def on_repair_order_changes(session: Session, changes: Sequence[RepairOrderChange]) -> None:
    """Queue the status texts for a page of RO changes (a PageHook; never commits).

    A stage move queues the new stage's text once per RO and supersedes the RO's pending
    status texts. A moved promised time alone is the watchdog's news, unless the daily cap
    held this stage's text: then `tell_latest_state` sends both in one text. The page's
    facts are read once for all its ROs (see `page_facts`).
    """
    moved: dict[int, list[RepairOrderChange]] = {}
    for change in changes:
        if change.stage_changed:
            moved.setdefault(change.rooftop.id, []).append(change)
    for rooftop_moves in moved.values():
        _stage_texts(session, rooftop_moves)
    for change in changes:
        if not change.stage_changed and change.promised_changed:
            tell_latest_state(session, change)


# One change at a time for callers that have one; the poller hands it whole pages.
on_repair_order_change = ForPage(on_repair_order_changes)


def _stage_texts(session: Session, changes: Sequence[RepairOrderChange]) -> None:
    """The stage texts of one rooftop's changes: once per RO per stage, older ones superseded."""
    rooftop = changes[0].rooftop
    wanted = [
        (change.ro, kind, status_dedupe_key(change.ro.id, change.ro.stage))
        for change in changes
        if (kind := STAGE_TEMPLATES.get(change.ro.stage)) is not None
    ]
    used = used_dedupe_keys(session, [key for _, _, key in wanted])  # texted or queued already
    texts = [
        _StatusText(ro=ro, stage=ro.stage, kind=kind, key=key)
        for ro, kind, key in wanted
        if key not in used
    ]
    reasons = {
        c.ro.id: f"repair order {c.ro.stage}" for c in changes if c.ro.stage in ENDING_STAGES
    }
    stale = pending_status_messages(session, [*reasons, *(text.ro.id for text in texts)])
    queued = _enqueue_statuses(session, rooftop, texts)
    for text, (message_id, _) in zip(texts, queued, strict=True):
        reasons[text.ro.id] = f"superseded by {text.stage} (message {message_id})"
    for ro_id, messages in stale.items():
        supersede(messages, reason=reasons[ro_id])


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
    key = promised_dedupe_key(ro.id, ro.promised_at)
    if used_dedupe_keys(session, [key]):
        return None  # told already
    text = _StatusText(
        ro=ro,
        stage=ro.stage,
        kind=kind,
        key=key,
        message_kind="watchdog",
        expires_at=ro.promised_at,
    )
    ((message_id, state),) = _enqueue_statuses(session, rooftop, [text])
    message = session.get(OutboundMessage, message_id)
    if state != "pending":
        return message
    if held.state == "pending":
        held.state = "superseded"
    cap = why.split(":")[0].split(";")[0]
    held.suppressed_reason = (
        f"{cap}; sent instead with the new ready time in message {message_id}"
    )[:200]
    return message


@dataclass(frozen=True)
class _StatusText:
    """A status text to queue for an RO, under a dedupe key not used yet."""

    ro: RepairOrder
    stage: str
    kind: str  # the template
    key: str
    message_kind: str = "status"
    expires_at: datetime | None = None


def _enqueue_statuses(
    session: Session, rooftop: Rooftop, texts: Sequence[_StatusText]
) -> list[tuple[int, str]]:
    """Queue one rooftop's texts (their keys checked unused): each new row's (id, state).

    Each fact is read once for the page (`page_facts`); the rows go in with one INSERT and
    their customer-page links with another.
    """
    if not texts:
        return []
    now = utcnow()
    customers = customers_by_id(session, (t.ro.customer_id for t in texts if t.ro.customer_id))
    reachable = [c for c in customers.values() if c.erased_at is None]
    phones = primary_phones(session, [c.id for c in reachable])
    first = texted_phones(session, phone_ids=[p.id for p in phones.values()], rooftop_id=rooftop.id)
    channels = channels_for(session, customers=reachable, rooftop=rooftop)
    rows: list[dict[str, Any]] = []
    links: list[dict[str, Any] | None] = []
    for text in texts:
        customer = customers.get(text.ro.customer_id) if text.ro.customer_id else None
        phone = phones.get(customer.id) if customer is not None else None
        row, link = _status_row(
            text,
            rooftop=rooftop,
            customer=customer,
            phone=phone,
            first_text=phone is not None and phone.id not in first,
            channel=channels.get(customer.id, "sms") if customer is not None else "sms",
            now=now,
        )
        rows.append(row)
        links.append(link)
    ids = insert_returning_ids(session, OUTBOX_TABLE, rows)
    minted = [
        {**link, "outbound_message_id": message_id}
        for link, message_id in zip(links, ids, strict=True)
        if link is not None
    ]
    insert_rows(session, LINK_TABLE, minted)
    return [(id_, row["state"]) for id_, row in zip(ids, rows, strict=True)]


def _status_row(
    text: _StatusText,
    *,
    rooftop: Rooftop,
    customer: Customer | None,
    phone: Phone | None,
    first_text: bool,
    channel: str,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The outbox row of one status text, and its customer-page link (None without one)."""
    ro, stage, kind = text.ro, text.stage, text.kind
    row: dict[str, Any] = {
        "rooftop_id": rooftop.id,
        "customer_id": customer.id if customer else None,
        "phone_id": None,
        "repair_order_id": ro.id,
        "kind": text.message_kind,
        "purpose": "status",
        "stage": stage,
        "template": None,
        "dedupe_key": text.key,
        "channel": "sms",
        "to_address": None,
        "from_address": None,
        "body": None,
        "content_sid": None,
        "content_variables": None,
        "state": "pending",
        "suppressed_reason": None,
        "not_before": now,
        "expires_at": text.expires_at or now + STAGE_TTL.get(stage, STATUS_TTL),
    }
    if customer is None or customer.erased_at is not None:
        return _unsendable(row, "repair order has no customer to text"), None
    if phone is None:
        return _unsendable(row, "customer has no textable phone on file"), None
    row["phone_id"] = phone.id
    config = rooftop.settings
    language = customer_language(customer, rooftop)
    context = status_context(ro=ro, rooftop=rooftop, customer=customer, language=language)
    token = new_token()
    context["page_link"] = f"{public_url()}{PATH_PREFIX}{token}"
    try:
        body = render(kind, language=language, context=context, overrides=config.templates)
    except TemplateError as exc:
        log.error("rooftop %s: template %s.%s failed: %s", rooftop.slug, kind, language, exc)
        reason = f"template {kind}.{language} failed: {exc}; fix the rooftop's templates"
        return _unsendable(row, reason), None
    if first_text:
        body = with_first_text_notice(body, rooftop=rooftop, language=language)
    recipient = recipient_for(phone, rooftop, channel)
    content_sid = config.whatsapp_templates.get(stage) if recipient.channel == "whatsapp" else None  # type: ignore[call-overload]
    row.update(
        body=body,
        template=f"{kind}.{language}",
        channel=recipient.channel,
        to_address=recipient.to_address,
        from_address=recipient.from_address,
        content_sid=content_sid,
        content_variables=whatsapp_variables(context) if content_sid else None,
    )
    link = {
        "token_hash": token_hash(token),
        "rooftop_id": ro.rooftop_id,
        "repair_order_id": ro.id,
        "customer_id": customer.id,
        "purpose": "status",
        "created_at": now,
        "open_count": 0,
    }
    return row, link


def _unsendable(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """Keep a suppressed row, so the advisor board can say why the customer was not told."""
    row.update(state="suppressed", suppressed_reason=reason[:200])
    return row
