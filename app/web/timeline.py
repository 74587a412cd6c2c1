"""A customer's timeline: messages both ways, calls, stage changes, consent; newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.models import Call, InboundMessage
from app.customers.models import Consent
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoEvent

LIMIT = 300


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


def customer_timeline(session: Session, *, group_id: int, customer_id: int) -> list[TimelineEntry]:
    """Everything that happened with this customer at every rooftop of the group."""
    rooftops = {
        r.id: r for r in session.scalars(select(Rooftop).where(Rooftop.group_id == group_id))
    }

    def where(rooftop_id: int | None) -> tuple[str, str]:
        rooftop = rooftops.get(rooftop_id) if rooftop_id else None
        return (rooftop.name, rooftop.timezone) if rooftop else ("", "UTC")

    entries: list[TimelineEntry] = []
    for out in session.scalars(
        select(OutboundMessage)
        .where(OutboundMessage.customer_id == customer_id)
        .order_by(OutboundMessage.created_at.desc())
        .limit(LIMIT)
    ):
        name, zone = where(out.rooftop_id)
        sent = out.state in ("sent", "delivered", "read", "claimed", "pending")
        headline = f"{'Texted' if sent else 'Not sent'} ({out.channel}, {out.kind})"
        entries.append(
            TimelineEntry(
                out.sent_at or out.created_at,
                "outbound",
                name,
                zone,
                headline,
                out.body,
                out.state,
                None if sent else (out.suppressed_reason or out.error_message),
            )
        )
    for inbound in session.scalars(
        select(InboundMessage)
        .where(InboundMessage.customer_id == customer_id)
        .order_by(InboundMessage.received_at.desc())
        .limit(LIMIT)
    ):
        name, zone = where(inbound.rooftop_id)
        headline = f"Customer wrote ({inbound.channel})"
        entries.append(
            TimelineEntry(
                inbound.received_at,
                "inbound",
                name,
                zone,
                headline,
                inbound.body,
                inbound.corrected_intent or inbound.intent,
                _reading(inbound),
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
                    f"Pitwall answered ({inbound.channel}, automatically)",
                    inbound.reply_body,
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
        entries.append(TimelineEntry(call.started_at, "call", name, zone, f"Call: {outcome}"))
    ros = {
        ro.id: ro
        for ro in session.scalars(select(RepairOrder).where(RepairOrder.customer_id == customer_id))
    }
    for event in session.scalars(
        select(RoEvent)
        .where(RoEvent.repair_order_id.in_(ros), RoEvent.kind == "stage")
        .order_by(RoEvent.at.desc())
        .limit(LIMIT)
    ):
        ro = ros[event.repair_order_id]
        name, zone = where(ro.rooftop_id)
        stage = (event.to_stage or "").replace("_", " ")
        entries.append(TimelineEntry(event.at, "stage", name, zone, f"RO {ro.ro_number}: {stage}"))
    for consent in session.scalars(
        select(Consent)
        .where(Consent.customer_id == customer_id)
        .order_by(Consent.at.desc())
        .limit(LIMIT)
    ):
        verb = "opted in to" if consent.action == "granted" else "opted out of"
        headline = f"Customer {verb} {consent.purpose} texts ({consent.channel})"
        entries.append(TimelineEntry(consent.at, "consent", "", "UTC", headline, consent.source))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:LIMIT]


def _reading(inbound: InboundMessage) -> str | None:
    """How Pitwall read the text, for the advisor: "read as status question (97%)"."""
    if inbound.corrected_intent:
        return f"corrected to {inbound.corrected_intent.replace('_', ' ')}"
    label = inbound.intent_label or inbound.intent
    if not label or inbound.intent_confidence is None:
        return None
    return f"read as {label.replace('_', ' ')} ({inbound.intent_confidence:.0%})"
