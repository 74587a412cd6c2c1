"""Status contacts Pitwall answered without staff, and calls nobody answered.

A status contact is a customer asking where their car is and getting the answer from
Pitwall, on any channel:
- a text answered automatically (the inbound text's reply was the status answer);
- a call told the status by the voice menu that did not go on to a person (deflected),
  in store hours or out of them;
- a view of the customer's page showing the status, with no text or call that day
  (`app.reports.customer_page.page_views_by_day`).

A missed call is a call no person answered: the desk did not pick up (busy, no answer,
failed), there was no desk to forward to, or it came out of hours and the caller was not
told a status (out of hours with the status told is deflected, not missed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.conversations.models import Call, InboundMessage
from app.dealers.models import Rooftop
from app.reports.customer_page import page_views_by_day

UTC_ZONE = ZoneInfo("UTC")
STATUS_TEXT_ANSWERS = ("status_answer",)
# An answer that named the lines waiting for approval is a status answer too, when the
# customer asked for their status (the same reply_kind also confirms a "yes").
STATUS_TEXT_ANSWER_OF_QUESTION = "approval_confirm"


@dataclass(frozen=True)
class DayContacts:
    """One local day's status contacts answered by Pitwall."""

    day: date
    texts_answered: int  # status texts answered automatically
    status_calls: int  # calls told the car's status by the voice menu
    calls_deflected: int  # ... that needed no person afterwards (in or out of hours)
    page_views: int  # status seen on the customer page, no text or call that day

    @property
    def answered(self) -> int:
        """Every status contact answered without staff."""
        return self.texts_answered + self.calls_deflected + self.page_views


def _local_days(rooftops: list[Rooftop], since: datetime, now: datetime) -> list[date]:
    zone = ZoneInfo(rooftops[0].timezone) if rooftops else UTC_ZONE
    first, last = since.astimezone(zone).date(), now.astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def status_contacts_by_day(
    session: Session, *, rooftops: list[Rooftop], since: datetime, now: datetime
) -> list[DayContacts]:
    """Per local day (each rooftop's wall clock) from `since` to `now`."""
    zones = {r.id: ZoneInfo(r.timezone) for r in rooftops}
    texts: Counter[date] = Counter()
    for rooftop_id, received_at in session.execute(
        select(InboundMessage.rooftop_id, InboundMessage.received_at).where(
            InboundMessage.rooftop_id.in_(zones),
            InboundMessage.received_at >= since,
            or_(
                InboundMessage.reply_kind.in_(STATUS_TEXT_ANSWERS),
                and_(
                    InboundMessage.reply_kind == STATUS_TEXT_ANSWER_OF_QUESTION,
                    InboundMessage.intent == "status_question",
                ),
            ),
        )
    ):
        texts[received_at.astimezone(zones.get(rooftop_id or 0, UTC_ZONE)).date()] += 1
    told: Counter[date] = Counter()
    deflected: Counter[date] = Counter()
    for rooftop_id, started_at, outcome in session.execute(
        select(Call.rooftop_id, Call.started_at, Call.outcome).where(
            Call.rooftop_id.in_(zones), Call.started_at >= since, Call.status_told.is_(True)
        )
    ):
        day = started_at.astimezone(zones.get(rooftop_id or 0, UTC_ZONE)).date()
        told[day] += 1
        if outcome in ("status_only", "after_hours"):
            deflected[day] += 1
    views = page_views_by_day(session, rooftops=rooftops, since=since)
    return [
        DayContacts(d, texts[d], told[d], deflected[d], views.get(d, 0))
        for d in _local_days(rooftops, since, now)
    ]


@dataclass(frozen=True)
class HourCalls:
    """Missed calls that started in one hour of the day (rooftop time)."""

    hour: int
    missed: int
    out_of_hours: int  # of `missed`, those that came while the store was closed


def missed_calls_by_hour(
    session: Session, *, rooftops: list[Rooftop], since: datetime
) -> list[HourCalls]:
    """Missed calls per hour of the day on each rooftop's wall clock, out of hours included."""
    zones = {r.id: ZoneInfo(r.timezone) for r in rooftops}
    missed: Counter[int] = Counter()
    closed: Counter[int] = Counter()
    for rooftop_id, started_at, outcome in session.execute(
        select(Call.rooftop_id, Call.started_at, Call.outcome).where(
            Call.rooftop_id.in_(zones),
            Call.started_at >= since,
            or_(
                Call.outcome == "missed",
                and_(Call.outcome == "after_hours", Call.status_told.is_(False)),
            ),
        )
    ):
        hour = started_at.astimezone(zones.get(rooftop_id or 0, UTC_ZONE)).hour
        missed[hour] += 1
        if outcome == "after_hours":
            closed[hour] += 1
    return [HourCalls(hour, missed[hour], closed[hour]) for hour in range(24)]
