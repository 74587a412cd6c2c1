"""Numbers for the director page: status calls deflected, missed calls, delivery, opt-outs.

Declined-work recovery comes from app.reports.service (the same function the JSON
API answers with), so the page and the API cannot disagree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.conversations.models import Call
from app.customers.models import Consent
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage

UTC_ZONE = ZoneInfo("UTC")
DELIVERED = ("delivered", "read")
NOT_DELIVERED = ("failed", "undelivered")


@dataclass(frozen=True)
class DayCalls:
    day: date
    status_calls: int
    deflected: int  # answered by Pitwall with the car's status, no person needed


def deflections_by_day(
    session: Session, *, rooftops: list[Rooftop], since: datetime, now: datetime
) -> list[DayCalls]:
    """Per local day: calls asking for status, and how many Pitwall answered itself."""
    zones = {r.id: ZoneInfo(r.timezone) for r in rooftops}
    status_calls: Counter[date] = Counter()
    deflected: Counter[date] = Counter()
    rows = session.execute(
        select(Call.rooftop_id, Call.started_at, Call.status_told, Call.outcome).where(
            Call.rooftop_id.in_(zones), Call.started_at >= since
        )
    )
    for rooftop_id, started_at, status_told, outcome in rows:
        day = started_at.astimezone(zones.get(rooftop_id or 0, UTC_ZONE)).date()
        if status_told or outcome == "status_only":
            status_calls[day] += 1
        if outcome == "status_only":
            deflected[day] += 1
    first = since.astimezone(zones[rooftops[0].id]).date() if rooftops else since.date()
    last = now.astimezone(zones[rooftops[0].id]).date() if rooftops else now.date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [DayCalls(d, status_calls[d], deflected[d]) for d in days]


def missed_calls_by_hour(
    session: Session, *, rooftops: list[Rooftop], since: datetime
) -> list[tuple[int, int]]:
    """Missed calls per hour of the day on each rooftop's wall clock: [(0, n), ... (23, n)]."""
    zones = {r.id: ZoneInfo(r.timezone) for r in rooftops}
    hours: Counter[int] = Counter()
    rows = session.execute(
        select(Call.rooftop_id, Call.started_at).where(
            Call.rooftop_id.in_(zones), Call.started_at >= since, Call.outcome == "missed"
        )
    )
    for rooftop_id, started_at in rows:
        hours[started_at.astimezone(zones.get(rooftop_id or 0, UTC_ZONE)).hour] += 1
    return [(hour, hours[hour]) for hour in range(24)]


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
