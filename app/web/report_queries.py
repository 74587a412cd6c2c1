"""Numbers for the director page: delivery and opt-outs.

Declined-work recovery comes from app.reports.service (the same function the JSON
API answers with), so the page and the API cannot disagree; status contacts and missed
calls from app.reports.contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.customers.models import Consent
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage

UTC_ZONE = ZoneInfo("UTC")
DELIVERED = ("delivered", "read")
NOT_DELIVERED = ("failed", "undelivered")


@dataclass(frozen=True)
class DeliveryStats:
    attempted: int
    delivered: int
    not_delivered: int
    suppressed: int
    phones_texted: int
    opt_outs: int

    @property
    def delivery_rate(self) -> float | None:
        finished = self.delivered + self.not_delivered
        return self.delivered / finished if finished else None

    @property
    def opt_out_rate(self) -> float | None:
        return self.opt_outs / self.phones_texted if self.phones_texted else None


def delivery_stats(
    session: Session, *, group_id: int, rooftops: list[Rooftop], since: datetime
) -> DeliveryStats:
    """Outbox outcomes since a date, and opt-outs among the phones texted.

    An opt-out is the customer (STOP, an advisor noting it) or the carrier (21610)
    revoking consent after Pitwall texted them; a DMS that never had consent is not one.
    """
    rooftop_ids = [r.id for r in rooftops]
    states = dict(
        session.execute(
            select(OutboundMessage.state, func.count())
            .where(OutboundMessage.rooftop_id.in_(rooftop_ids), OutboundMessage.created_at >= since)
            .group_by(OutboundMessage.state)
        ).all()
    )
    texted = (
        select(OutboundMessage.phone_id)
        .where(
            OutboundMessage.rooftop_id.in_(rooftop_ids),
            OutboundMessage.created_at >= since,
            OutboundMessage.sent_at.is_not(None),
        )
        .distinct()
        .scalar_subquery()
    )
    phones_texted = session.scalar(
        select(func.count(func.distinct(OutboundMessage.phone_id))).where(
            OutboundMessage.rooftop_id.in_(rooftop_ids),
            OutboundMessage.created_at >= since,
            OutboundMessage.sent_at.is_not(None),
        )
    )
    opt_outs = session.scalar(
        select(func.count(func.distinct(Consent.phone_id))).where(
            Consent.group_id == group_id,
            Consent.action == "revoked",
            Consent.at >= since,
            ~Consent.source.startswith("dms:"),
            Consent.phone_id.in_(texted),
        )
    )
    delivered = sum(states.get(s, 0) for s in DELIVERED)
    not_delivered = sum(states.get(s, 0) for s in NOT_DELIVERED)
    attempted = delivered + not_delivered + states.get("sent", 0)
    return DeliveryStats(
        attempted=attempted,
        delivered=delivered,
        not_delivered=not_delivered,
        suppressed=states.get("suppressed", 0),
        phones_texted=phones_texted or 0,
        opt_outs=opt_outs or 0,
    )
