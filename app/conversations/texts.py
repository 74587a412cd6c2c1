"""The words Pitwall answers with: stages, promised times, store hours, in the customer's language.

Sentences live in templates/messages/ (answer_*, help_*, stop_*, start_*, household_*,
unknown_*, voice_*), rendered through app.messaging.templates so a rooftop may override
them; this module supplies the pieces that depend on data (stage words, local times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.dealers.models import Rooftop
from app.messaging.templates import render
from app.repair_orders.models import RepairOrder

LANGUAGES = ("en", "es", "fr")

STAGE_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "checked_in": "is checked in and waiting for a technician",
        "diagnosing": "is being inspected",
        "awaiting_approval": "is waiting on your approval",
        "awaiting_parts": "is waiting on parts",
        "in_repair": "is being repaired",
        "quality_check": "is in a final quality check",
        "ready_for_pickup": "is ready for pickup",
        "closed": "has been picked up",
        "canceled": "has no open repair order",
    },
    "es": {
        "checked_in": "está registrado y en espera de un técnico",
        "diagnosing": "está en revisión",
        "awaiting_approval": "está esperando su autorización",
        "awaiting_parts": "está esperando piezas",
        "in_repair": "está en reparación",
        "quality_check": "está en la revisión final de calidad",
        "ready_for_pickup": "está listo para recoger",
        "closed": "ya fue entregado",
        "canceled": "no tiene una orden abierta",
    },
    "fr": {
        "checked_in": "est enregistré et attend un technicien",
        "diagnosing": "est en diagnostic",
        "awaiting_approval": "attend votre accord",
        "awaiting_parts": "attend des pièces",
        "in_repair": "est en réparation",
        "quality_check": "est au contrôle qualité final",
        "ready_for_pickup": "est prêt à être récupéré",
        "closed": "a été récupéré",
        "canceled": "n'a pas d'ordre de réparation ouvert",
    },
}

# Twilio <Say> language codes; North American dealers, so US Spanish and Canadian French.
VOICE_LANGUAGE = {"en": "en-US", "es": "es-US", "fr": "fr-CA"}

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SPOKEN_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}
_JOIN = {"en": ("to", "from", "to"), "es": ("a", "de", "a"), "fr": ("au", "de", "à")}


def language_of(*candidates: str | None) -> str:
    """The first supported language among the candidates (detected, customer's, rooftop's)."""
    for candidate in candidates:
        if candidate in LANGUAGES:
            return candidate
    return "en"


def say(rooftop: Rooftop, name: str, *, language: str, **context: Any) -> str:
    """Render one of our templates for this rooftop (its overrides apply)."""
    context.setdefault("rooftop", rooftop.name)
    return render(name, language=language, context=context, overrides=rooftop.settings.templates)


def promised_words(
    moment: datetime | None, *, zone: ZoneInfo, language: str, now: datetime
) -> str | None:
    """A promised time as a customer says it, in the rooftop's zone: "4:00 PM today"."""
    if moment is None:
        return None
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    if language == "en":
        clock = f"{local.strftime('%I').lstrip('0')}:{local:%M} {local:%p}"
        if local.date() == today:
            return f"{clock} today"
        if local.date() == today + timedelta(days=1):
            return f"{clock} tomorrow"
        return f"{local:%a %b} {local.day} at {clock}"
    clock = f"{local:%H:%M}" if language == "es" else f"{local.hour} h {local:%M}"
    at = "a las" if language == "es" else "à"
    if local.date() == today:
        return f"{'hoy' if language == 'es' else 'aujourd’hui'} {at} {clock}"
    if local.date() == today + timedelta(days=1):
        return f"{'mañana' if language == 'es' else 'demain'} {at} {clock}"
    return f"{local:%d/%m} {at} {clock}"


@dataclass(frozen=True)
class OpenHours:
    """One span of store hours: days of the week (0 = Monday) and the local times."""

    days: tuple[int, ...]
    opens: time
    closes: time


_SPAN = re.compile(
    r"^\s*(?P<first>[A-Za-z]{3})(?:\s*-\s*(?P<last>[A-Za-z]{3}))?\s+"
    r"(?P<open>\d{1,2}:\d{2})\s*-\s*(?P<close>\d{1,2}:\d{2})\s*$"
)


def parse_store_hours(text: str) -> list[OpenHours]:
    """Parse "Mon-Fri 7:00-18:00, Sat 8:00-16:00"; raise ValueError naming the bad part."""
    spans: list[OpenHours] = []
    for part in text.split(","):
        match = _SPAN.match(part)
        if not match:
            raise ValueError(
                f"store_hours: cannot read {part.strip()!r} (e.g. 'Mon-Fri 7:00-18:00')"
            )
        try:
            first = _DAY_NAMES.index(match["first"].title())
            last = _DAY_NAMES.index((match["last"] or match["first"]).title())
        except ValueError:
            raise ValueError(f"store_hours: unknown day in {part.strip()!r}") from None
        days = (
            tuple(range(first, last + 1)) if first <= last else (*range(first, 7), *range(last + 1))
        )
        opens, closes = (
            time.fromisoformat(f"{int(t[0]):02d}:{t[1]}")
            for t in (match["open"].split(":"), match["close"].split(":"))
        )
        spans.append(OpenHours(days=days, opens=opens, closes=closes))
    return spans


def is_open(hours: list[OpenHours], *, now: datetime, zone: ZoneInfo) -> bool:
    """True when the store is open at `now` (aware), read in the rooftop's zone."""
    local = now.astimezone(zone)
    return any(
        local.weekday() in span.days and span.opens <= local.time() < span.closes for span in hours
    )


def next_opening(hours: list[OpenHours], *, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When the store next opens after `now` (aware, UTC out), or None with no hours at all."""
    local = now.astimezone(zone)
    for days_ahead in range(8):
        day = local.date() + timedelta(days=days_ahead)
        opens = sorted(span.opens for span in hours if day.weekday() in span.days)
        for moment in opens:
            candidate = datetime.combine(day, moment, tzinfo=zone)
            if candidate > local:
                return candidate.astimezone(now.tzinfo)
    return None


def _spoken_clock(moment: time, language: str) -> str:
    if language == "en":
        hour = moment.hour % 12 or 12
        minutes = f":{moment.minute:02d}" if moment.minute else ""
        return f"{hour}{minutes} {'AM' if moment.hour < 12 else 'PM'}"
    if language == "fr":
        return f"{moment.hour} h {moment.minute:02d}" if moment.minute else f"{moment.hour} h"
    return f"{moment.hour}:{moment.minute:02d}"


def spoken_hours(hours: list[OpenHours], language: str) -> str:
    """Store hours as a voice reads them: "Monday to Friday 7 AM to 6 PM, Saturday 8 AM to 4 PM"."""
    names = _SPOKEN_DAYS[language]
    to_day, from_clock, to_clock = _JOIN[language]
    parts = []
    for span in hours:
        days = names[span.days[0]]
        if len(span.days) > 1:
            days += f" {to_day} {names[span.days[-1]]}"
        opens, closes = _spoken_clock(span.opens, language), _spoken_clock(span.closes, language)
        if language == "en":
            parts.append(f"{days} {opens} {to_clock} {closes}")
        else:
            parts.append(f"{days} {from_clock} {opens} {to_clock} {closes}")
    return ", ".join(parts)


@dataclass(frozen=True)
class StatusWords:
    """The parts of a status answer, shared by texts and calls."""

    vehicle: str
    stage_words: str
    promised: str | None
    waiting_on: str | None
    lines: str
    total: int

    def context(self) -> dict[str, object]:
        return dict(self.__dict__)


def status_words(
    order: RepairOrder, *, rooftop: Rooftop, language: str, now: datetime
) -> StatusWords:
    """Stage in words, promised time in the rooftop's zone, and what the shop waits on."""
    pending = [line for line in order.lines if line.status == "pending"]
    waiting_on = None
    if order.stage == "awaiting_approval" and pending:
        waiting_on = "approval"
    elif order.stage == "awaiting_parts":
        waiting_on = "parts"
    promised = None
    if order.stage not in ("ready_for_pickup", "closed", "canceled"):
        promised = promised_words(
            order.promised_at, zone=rooftop.settings.zone, language=language, now=now
        )
    return StatusWords(
        vehicle=order.vehicle.label if order.vehicle else f"vehicle (RO {order.ro_number})",
        stage_words=STAGE_WORDS[language].get(order.stage, STAGE_WORDS[language]["in_repair"]),
        promised=promised,
        waiting_on=waiting_on,
        lines=", ".join(line.description for line in pending),
        total=sum(line.amount_cents for line in pending),
    )
