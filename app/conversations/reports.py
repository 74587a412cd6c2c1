"""Conversation measures per rooftop per day (in the rooftop's zone), for the service manager.

"Status calls deflected": calls where the caller heard their car's status and did
not ask for a person (outcome status_only). Rows are bucketed in Python: a rooftop
has hundreds of rows a day, and the same code then works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.intents import STATUS
from app.conversations.models import Call, InboundMessage, Task
from app.conversations.tasks import CONVERSATION_KINDS
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage

SENT_STATES = ("sent", "delivered", "read")
_COUNTERS = (
    "status_answered_text",
    "status_answered_voice",
    "status_calls_deflected",
    "calls",
    "calls_forwarded",
    "calls_missed",
    "calls_after_hours",
    "textbacks_queued",
    "textbacks_sent",
    "callbacks_done",
)


def conversations_report(
    session: Session, *, rooftop: Rooftop, since: date, now: datetime
) -> dict[str, Any]:
    """Per-day counters since `since` (local date) and the replies waiting right now."""
    zone = rooftop.settings.zone
    start = datetime.combine(since, time.min, tzinfo=zone)
    days: dict[date, dict[str, Any]] = defaultdict(lambda: dict.fromkeys(_COUNTERS, 0))
    callback_seconds: dict[date, list[float]] = defaultdict(list)

    def day(at: datetime) -> dict[str, Any]:
        return days[at.astimezone(zone).date()]

    answered = select(InboundMessage.received_at).where(
        InboundMessage.rooftop_id == rooftop.id,
        InboundMessage.received_at >= start,
        InboundMessage.intent == STATUS,
        InboundMessage.repair_order_id.is_not(None),
        InboundMessage.reply_body.is_not(None),
    )
    for (at,) in session.execute(answered):
        day(at)["status_answered_text"] += 1
    for call in session.scalars(
        select(Call).where(Call.rooftop_id == rooftop.id, Call.started_at >= start)
    ):
        counters = day(call.started_at)
        counters["calls"] += 1
        counters["status_answered_voice"] += int(call.status_told)
        counters["status_calls_deflected"] += int(
            call.status_told and call.outcome == "status_only"
        )
        counters["calls_forwarded"] += int(call.forwarded)
        counters["calls_missed"] += int(call.outcome == "missed")
        counters["calls_after_hours"] += int(call.after_hours)
    textbacks = select(OutboundMessage.created_at, OutboundMessage.state).where(
        OutboundMessage.rooftop_id == rooftop.id,
        OutboundMessage.kind == "textback",
        OutboundMessage.created_at >= start,
    )
    for at, state in session.execute(textbacks):
        day(at)["textbacks_sent" if state in SENT_STATES else "textbacks_queued"] += 1
    callbacks = select(Task.created_at, Task.done_at).where(
        Task.rooftop_id == rooftop.id,
        Task.kind == "callback",
        Task.created_at >= start,
        Task.done_at.is_not(None),
    )
    for created, done in session.execute(callbacks):
        assert done is not None  # filtered above
        day(created)["callbacks_done"] += 1
        callback_seconds[created.astimezone(zone).date()].append((done - created).total_seconds())

    rows = []
    for local_day in sorted(days):
        seconds = callback_seconds.get(local_day, [])
        rows.append(
            {
                "date": local_day.isoformat(),
                **days[local_day],
                "callback_seconds_median": statistics.median(seconds) if seconds else None,
                "callback_seconds_avg": statistics.fmean(seconds) if seconds else None,
            }
        )
    waiting = list(
        session.scalars(
            select(Task.created_at).where(
                Task.rooftop_id == rooftop.id,
                Task.state == "open",
                Task.kind.in_(CONVERSATION_KINDS),
            )
        )
    )
    totals = {name: sum(row[name] for row in rows) for name in _COUNTERS}
    return {
        "rooftop": rooftop.slug,
        "since": since.isoformat(),
        "status_calls_deflected": totals["status_calls_deflected"],
        "totals": totals,
        "days": rows,
        "replies_waiting": len(waiting),
        "oldest_reply_waiting_seconds": max(
            ((now - at).total_seconds() for at in waiting), default=None
        ),
    }
