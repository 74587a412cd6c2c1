"""What the customer's page did: links opened, status seen without a call, answers, bookings.

Per rooftop, over the days from `since` (the rooftop's calendar):
- links_sent / links_opened: links minted for texts that were queued, and those opened at
  least once (first open per message: one link per text).
- status_seen_on_page: days a customer looked at an RO's page; `without_contact` those
  days on which the same customer neither texted nor called the rooftop (a status
  contact deflected: `page_views_by_day` hands them to app/reports/contacts.py, which
  counts them with the status questions answered by text and call).
- approvals / declines by page (lines answered on the page) against by text (lines in
  text approvals; texts read as declining work).
- bookings: appointment requests and call-back requests from the page.
- answer minutes: from the RO entering awaiting_approval to the customer's answer, median
  per channel (page answers; text approvals).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from statistics import median
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.conversations.intents import DECLINE_WORK
from app.conversations.models import Approval, Call, InboundMessage
from app.customer_page.models import Booking, CustomerLink, LineAnswer, PageAnswer, PageVisit
from app.dealers.models import Rooftop
from app.repair_orders.models import RoEvent

DEFINITIONS = {
    "links_sent": "links in status texts and follow-ups queued since `since` (one per text)",
    "links_opened": "of those, links opened at least once (the first open of each message)",
    "status_seen_on_page": "days a customer opened an RO's page (one per RO, customer, day)",
    "status_seen_without_contact": (
        "of those, days with no text and no call from that customer to the rooftop: "
        "status contacts deflected by the page"
    ),
    "approved_lines_page / approved_lines_text": "lines approved on the page / by text",
    "declined_lines_page / declined_texts": (
        "lines declined on the page / texts read as declining work"
    ),
    "bookings / callbacks": "appointment requests / call-back requests from the page",
    "median_answer_minutes_page / _text": (
        "median minutes from the RO entering awaiting_approval to the answer"
    ),
}


def _start(day: date, rooftop: Rooftop) -> datetime:
    return datetime.combine(day, time(0), tzinfo=rooftop.settings.zone).astimezone(UTC)


def _minutes(pairs: list[tuple[datetime | None, datetime]]) -> float | None:
    spans = [(answered - asked).total_seconds() / 60 for asked, answered in pairs if asked]
    return round(median(spans), 1) if spans else None


def _request_times(session: Session, ro_ids: set[int]) -> dict[int, list[datetime]]:
    found: dict[int, list[datetime]] = {}
    for ro_id, at in session.execute(
        select(RoEvent.repair_order_id, RoEvent.at).where(
            RoEvent.repair_order_id.in_(ro_ids),
            RoEvent.kind == "stage",
            RoEvent.to_stage == "awaiting_approval",
        )
    ):
        found.setdefault(ro_id, []).append(at)
    return found


def _visits(session: Session, rooftop: Rooftop, since: date) -> list[tuple[int, date]]:
    """(customer, local day) of each day a customer opened one of the rooftop's RO pages."""
    rows = session.execute(
        select(PageVisit.customer_id, PageVisit.day).where(
            PageVisit.rooftop_id == rooftop.id, PageVisit.day >= since
        )
    ).all()
    return [(customer_id, day) for customer_id, day in rows]


def _without_contact(
    session: Session, rooftop: Rooftop, visits: list[tuple[int, date]]
) -> list[tuple[int, date]]:
    """The visits on a day the customer neither texted nor called the rooftop."""
    if not visits:
        return []
    start = _start(min(day for _, day in visits), rooftop)
    customers = {customer_id for customer_id, _ in visits}
    zone = rooftop.settings.zone
    contacted: set[tuple[int, date]] = set()
    for model, at in ((InboundMessage, InboundMessage.received_at), (Call, Call.started_at)):
        for customer_id, moment in session.execute(
            select(model.customer_id, at).where(
                model.rooftop_id == rooftop.id,
                model.customer_id.in_(customers),
                at >= start,
            )
        ):
            if customer_id is not None:
                contacted.add((customer_id, moment.astimezone(zone).date()))
    return [visit for visit in visits if visit not in contacted]


def page_views_by_day(
    session: Session, *, rooftops: Sequence[Rooftop], since: datetime
) -> Mapping[date, int]:
    """Status seen on the page with no text or call that day, per local day (for
    app/reports/contacts.py, which counts them as status contacts deflected)."""
    counts: Counter[date] = Counter()
    for rooftop in rooftops:
        first_day = since.astimezone(rooftop.settings.zone).date()
        visits = _visits(session, rooftop, first_day)
        counts.update(day for _, day in _without_contact(session, rooftop, visits))
    return counts


def _rooftop_measures(session: Session, rooftop: Rooftop, since: date) -> dict[str, Any]:
    start = _start(since, rooftop)
    links = session.execute(
        select(func.count(CustomerLink.id), func.count(CustomerLink.first_opened_at)).where(
            CustomerLink.rooftop_id == rooftop.id,
            CustomerLink.created_at >= start,
            CustomerLink.outbound_message_id.is_not(None),
        )
    ).one()
    visits = _visits(session, rooftop, since)
    deflected = _without_contact(session, rooftop, visits)
    page_choices = dict(
        session.execute(
            select(LineAnswer.choice, func.count())
            .join(PageAnswer, PageAnswer.id == LineAnswer.answer_id)
            .where(PageAnswer.rooftop_id == rooftop.id, PageAnswer.answered_at >= start)
            .group_by(LineAnswer.choice)
        ).all()
    )
    text_approvals = session.execute(
        select(Approval.repair_order_id, Approval.lines, Approval.approved_at).where(
            Approval.rooftop_id == rooftop.id,
            Approval.approved_at >= start,
            Approval.channel != "page",
        )
    ).all()
    declined_texts = session.scalar(
        select(func.count()).where(
            InboundMessage.rooftop_id == rooftop.id,
            InboundMessage.received_at >= start,
            InboundMessage.intent == DECLINE_WORK,
        )
    )
    bookings = dict(
        session.execute(
            select(Booking.kind, func.count())
            .where(Booking.rooftop_id == rooftop.id, Booking.created_at >= start)
            .group_by(Booking.kind)
        ).all()
    )
    page_answers = session.execute(
        select(PageAnswer.requested_at, PageAnswer.answered_at).where(
            PageAnswer.rooftop_id == rooftop.id, PageAnswer.answered_at >= start
        )
    ).all()
    requests = _request_times(session, {ro for ro, _, _ in text_approvals if ro is not None})
    text_pairs = []
    for ro_id, _lines, approved_at in text_approvals:
        asked = [at for at in requests.get(ro_id or 0, []) if at <= approved_at]
        text_pairs.append((max(asked) if asked else None, approved_at))
    return {
        "rooftop": rooftop.slug,
        "links_sent": links[0],
        "links_opened": links[1],
        "status_seen_on_page": len(visits),
        "status_seen_without_contact": len(deflected),
        "approved_lines_page": page_choices.get("approve", 0),
        "approved_lines_text": sum(len(lines) for _, lines, _ in text_approvals),
        "declined_lines_page": page_choices.get("decline", 0),
        "declined_texts": declined_texts or 0,
        "bookings": bookings.get("appointment", 0),
        "callbacks": bookings.get("callback", 0),
        "median_answer_minutes_page": _minutes([(a, b) for a, b in page_answers]),
        "median_answer_minutes_text": _minutes(text_pairs),
    }


COUNTS = (
    "links_sent",
    "links_opened",
    "status_seen_on_page",
    "status_seen_without_contact",
    "approved_lines_page",
    "approved_lines_text",
    "declined_lines_page",
    "declined_texts",
    "bookings",
    "callbacks",
)


def customer_page_measures(
    session: Session, *, rooftops: Sequence[Rooftop], since: date
) -> dict[str, Any]:
    """The measures per rooftop and summed over them (medians are per rooftop only)."""
    per_rooftop = [_rooftop_measures(session, rooftop, since) for rooftop in rooftops]
    totals = {key: sum(row[key] for row in per_rooftop) for key in COUNTS}
    return {
        "since": since.isoformat(),
        **totals,
        "by_rooftop": per_rooftop,
        "definitions": DEFINITIONS,
    }


def default_since(today: date) -> date:
    return today - timedelta(days=30)
