"""A customer's conversation: texts both ways on every channel, calls, stage changes, consent.

Each entry says who or what sent it (Pitwall on its own, or the advisor by name), its
delivery state, and why a text did not go out or is held. Newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.conversations.models import Call, InboundMessage
from app.customers.carrier import CARRIER
from app.customers.models import Consent, CustomerPhone
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoEvent
from app.web.people import staff_name
from app.web.queries import rows_by_id

LIMIT = 300
# What each kind of outbound text is, for the headline.
KIND_WORDS = {
    "status": "status text",
    "followup": "follow-up",
    "watchdog": "ready-time notice",
    "reply": "text",
    "textback": "missed-call text-back",
}
_GONE_OUT = ("claimed", "sending", "queued", "sent", "delivered", "read")
CHANNEL_WORDS = {"sms": "SMS", "whatsapp": "WhatsApp", "voice": "call"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # outbound | inbound | call | stage | consent
    rooftop: str
    zone: str
    headline: str
    text: str | None = None
    state: str | None = None
    note: str | None = None  # why a text did not go out; how Pitwall read a customer's text
    ro_id: int | None = None


def outbound_headline(message: OutboundMessage, sender: str) -> tuple[str, str | None]:
    """("Texted by Pitwall (SMS, status text)", why it did not go out or is held)."""
    what = f"{CHANNEL_WORDS.get(message.channel, message.channel)}, "
    what += KIND_WORDS.get(message.kind, message.kind)
    reason = message.suppressed_reason or message.error_message
    if message.state in _GONE_OUT:
        return f"Texted by {sender} ({what})", None
    if message.state == "pending":
        if reason:
            return f"Held: {sender}'s text ({what})", reason
        return f"Sending: {sender}'s text ({what})", None
    return f"Not sent: {sender}'s text ({what})", reason or "no reason recorded"


def customer_timeline(
    session: Session, *, group_id: int, customer_id: int, ro_id: int | None = None
) -> list[TimelineEntry]:
    """Everything that happened with this customer at every rooftop of the group
    (only what is about one RO and the conversation around it, with `ro_id`)."""
    rooftops = {
        r.id: r for r in session.scalars(select(Rooftop).where(Rooftop.group_id == group_id))
    }
    ros = {
        ro.id: ro
        for ro in session.scalars(select(RepairOrder).where(RepairOrder.customer_id == customer_id))
    }

    def where(rooftop_id: int | None) -> tuple[str, str]:
        rooftop = rooftops.get(rooftop_id) if rooftop_id else None
        return (rooftop.name, rooftop.timezone) if rooftop else home

    latest_ro = max(ros.values(), key=lambda ro: ro.opened_at, default=None)
    first = rooftops.get(latest_ro.rooftop_id) if latest_ro else None
    first = first or next(iter(sorted(rooftops.values(), key=lambda r: r.id)), None)
    home = ("", first.timezone if first else "UTC")

    entries: list[TimelineEntry] = []
    outbound = list(
        session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.customer_id == customer_id)
            .order_by(OutboundMessage.created_at.desc())
            .limit(LIMIT)
        )
    )
    users = rows_by_id(
        session, User, {m.created_by_user_id for m in outbound if m.created_by_user_id}
    )
    for out in outbound:
        name, zone = where(out.rooftop_id)
        sender = (
            staff_name(users.get(out.created_by_user_id)) if out.created_by_user_id else "Pitwall"
        )
        headline, note = outbound_headline(out, sender)
        entries.append(
            TimelineEntry(
                out.sent_at or out.created_at,
                "outbound",
                name,
                zone,
                headline,
                out.body,
                out.state,
                note,
                out.repair_order_id,
            )
        )
    for inbound in session.scalars(
        select(InboundMessage)
        .where(InboundMessage.customer_id == customer_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(LIMIT)
    ):
        name, zone = where(inbound.rooftop_id)
        channel = CHANNEL_WORDS.get(inbound.channel, inbound.channel)
        entries.append(
            TimelineEntry(
                inbound.received_at,
                "inbound",
                name,
                zone,
                f"Customer wrote ({channel})",
                inbound.body,
                inbound.corrected_intent or inbound.intent,
                _reading(inbound),
                inbound.repair_order_id,
            )
        )
        if inbound.reply_body:
            # Pitwall's own answer, sent back in the webhook's response.
            entries.append(
                TimelineEntry(
                    inbound.handled_at or inbound.received_at,
                    "outbound",
                    name,
                    zone,
                    f"Pitwall answered automatically ({channel})",
                    inbound.reply_body,
                    "sent",
                    None,
                    inbound.repair_order_id,
                )
            )
    for call in session.scalars(
        select(Call)
        .where(Call.customer_id == customer_id)
        .order_by(Call.started_at.desc())
        .limit(LIMIT)
    ):
        name, zone = where(call.rooftop_id)
        outcome = (call.outcome or "in progress").replace("_", " ")
        entries.append(
            TimelineEntry(
                call.started_at,
                "call",
                name,
                zone,
                f"Call: {outcome}",
                None,
                None,
                _call_note(call),
                call.repair_order_id,
            )
        )
    for event in session.scalars(
        select(RoEvent)
        .where(RoEvent.repair_order_id.in_(ros), RoEvent.kind == "stage")
        .order_by(RoEvent.at.desc())
        .limit(LIMIT)
    ):
        ro = ros[event.repair_order_id]
        name, zone = where(ro.rooftop_id)
        stage = (event.to_stage or "").replace("_", " ")
        headline = f"RO {ro.ro_number}: {stage}"
        entries.append(TimelineEntry(event.at, "stage", name, zone, headline, ro_id=ro.id))
    phone_ids = select(CustomerPhone.phone_id).where(CustomerPhone.customer_id == customer_id)
    for consent in session.scalars(
        select(Consent)
        .where(or_(Consent.customer_id == customer_id, Consent.phone_id.in_(phone_ids)))
        .order_by(Consent.at.desc())
        .limit(LIMIT)
    ):
        verb = "opted in to" if consent.action == "granted" else "opted out of"
        channel = CHANNEL_WORDS.get(consent.channel, consent.channel)
        headline = f"Customer {verb} {consent.purpose} texts ({channel})"
        if consent.purpose == CARRIER:
            # Twilio's own block (app/customers/carrier.py), apart from the customer's consent.
            headline = (
                f"Twilio blocks texts from {consent.detail} until the customer texts START"
                if consent.action == "revoked"
                else f"Twilio lifted its block on texts from {consent.detail}"
            )
        entries.append(
            TimelineEntry(consent.at, "consent", "", home[1], headline, None, None, consent.source)
        )
    if ro_id is not None:
        # The RO's page: what is about this RO, and the conversation that is about no RO.
        entries = [e for e in entries if e.ro_id in (ro_id, None) or e.kind == "consent"]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:LIMIT]


def _call_note(call: Call) -> str | None:
    parts = []
    if call.status_told:
        parts.append("status told by the phone menu")
    if call.forwarded:
        seconds = f", {call.dial_duration_s} s" if call.dial_duration_s else ""
        parts.append(f"forwarded to the desk ({(call.dial_status or 'no answer')}{seconds})")
    if call.after_hours:
        parts.append("out of hours")
    return "; ".join(parts) or None


def _reading(inbound: InboundMessage) -> str | None:
    """How Pitwall read the text, for the advisor: "read as status question (97%)"."""
    if inbound.corrected_intent:
        return f"corrected to {inbound.corrected_intent.replace('_', ' ')}"
    label = inbound.intent_label or inbound.intent
    if not label or inbound.intent_confidence is None:
        return None
    return f"read as {label.replace('_', ' ')} ({inbound.intent_confidence:.0%})"
