"""An RO's history as staff read it: what changed, from what to what, on the rooftop's clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.repair_orders.models import RoEvent
from app.web.templating import label, local_time

_SAME_DAY = "%-I:%M %p"
_OTHER_DAY = "%a %b %-d, %-I:%M %p"


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    what: str  # "Stage", "Promised", "Vanished from the DMS"
    change: str  # "in repair → awaiting parts", "3:00 PM → 5:30 PM"
    note: str | None = None


def _when(value: Any, zone: ZoneInfo, other: datetime | None) -> str:
    if not value:
        return "none"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    same_day = other is not None and moment.astimezone(zone).date() == other.astimezone(zone).date()
    return local_time(moment, zone, _SAME_DAY if same_day else _OTHER_DAY)


def describe(event: RoEvent, zone: ZoneInfo) -> HistoryLine:
    """One event as a line: the old and the new value, never the same stage twice."""
    detail = event.detail or {}
    if event.kind == "promised":
        old, new = detail.get("from"), detail.get("to")
        new_at = datetime.fromisoformat(new) if isinstance(new, str) else None
        old_at = datetime.fromisoformat(old) if isinstance(old, str) else None
        # Both on one day: the day once ("3:00 PM → 5:30 PM"); else each with its day.
        return HistoryLine(
            event.at,
            "Promised time",
            f"{_when(old, zone, new_at)} → {_when(new, zone, old_at)}",
            None if new_at is None or old_at is None else _same_day_note(old_at, new_at, zone),
        )
    if event.kind == "vanished":
        note = f"not in {detail.get('missing_polls', 'several')} DMS polls in a row"
        return HistoryLine(event.at, "Closed: gone from the DMS", _stages(event), note)
    if event.kind == "stage":
        raw = detail.get("raw_status")
        if event.from_stage is None:
            return HistoryLine(event.at, "Opened", label(event.to_stage), _raw(raw))
        return HistoryLine(event.at, "Stage", _stages(event), _raw(raw))
    return HistoryLine(event.at, label(event.kind).capitalize(), _stages(event))


def _stages(event: RoEvent) -> str:
    if event.from_stage == event.to_stage:
        return label(event.to_stage)
    return f"{label(event.from_stage) or 'none'} → {label(event.to_stage)}"


def _raw(raw: Any) -> str | None:
    return f"DMS status {raw}" if raw else None


def _same_day_note(old: datetime, new: datetime, zone: ZoneInfo) -> str | None:
    if old.astimezone(zone).date() == new.astimezone(zone).date():
        return local_time(new, zone, "on %a %b %-d")
    return None


def history(events: list[RoEvent], zone: ZoneInfo) -> list[HistoryLine]:
    return [describe(event, zone) for event in events]
