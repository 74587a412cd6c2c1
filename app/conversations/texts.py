"""The words Pitwall answers with: stages, promised times, store hours, in the customer's language.

Sentences live in templates/messages/ (answer_*, help_*, stop_*, start_*, household_*,
unknown_*, voice_*), rendered through app.messaging.templates so a rooftop may override
them; this module supplies the pieces that depend on data (stage words, local times).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Store hours are parsed and decided in app.dealers.hours (parse_store_hours re-exported).
from app.dealers.hours import MIDNIGHT_CLOSE, OpenHours
from app.dealers.hours import parse_store_hours as parse_store_hours
from app.dealers.models import Rooftop
from app.messaging.line_names import line_names
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
        "checked_in": "ya fue registrado y espera a un técnico",
        "diagnosing": "se revisa en este momento",
        "awaiting_approval": "espera su visto bueno",
        "awaiting_parts": "espera piezas",
        "in_repair": "ya se repara en el taller",
        "quality_check": "pasa el control final de calidad",
        "ready_for_pickup": "ya puede recogerse",
        "closed": "ya fue entregado",
        "canceled": "no tiene una orden abierta",
    },
    "fr": {
        "checked_in": "est enregistré et attend un technicien",
        "diagnosing": "est en diagnostic",
        "awaiting_approval": "attend votre accord",
        "awaiting_parts": "attend des pièces",
        "in_repair": "est en réparation",
        "quality_check": "est en vérification finale",
        "ready_for_pickup": "vous attend",
        "closed": "a été récupéré",
        "canceled": "n'a pas d'ordre de réparation ouvert",
    },
}

# Twilio <Say> language codes; North American dealers, so US Spanish and Canadian French.
VOICE_LANGUAGE = {"en": "en-US", "es": "es-US", "fr": "fr-CA"}

_SPOKEN_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}
_MIDNIGHT = {"en": "midnight", "es": "medianoche", "fr": "minuit"}
_ALL_DAY = {"en": "24 hours", "es": "las 24 horas", "fr": "24 heures sur 24"}
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
        today_word = "hoy" if language == "es" else "aujourd'hui"  # ' is GSM-7, ’ is not
        return f"{today_word} {at} {clock}"
    if local.date() == today + timedelta(days=1):
        return f"{'mañana' if language == 'es' else 'demain'} {at} {clock}"
    return f"{local:%d/%m} {at} {clock}"


def closed_until_words(rooftop: Rooftop, *, now: datetime, language: str) -> str | None:
    """While the store is closed (hours, holiday, special day): when it opens, in words.

    None while it is open, or when it has no opening in the next year.
    """
    settings = rooftop.settings
    opening = settings.hours.closed_until(now)
    if opening is None:
        return None
    return promised_words(opening, zone=settings.zone, language=language, now=now)


def _spoken_clock(moment: time, language: str) -> str:
    if moment == MIDNIGHT_CLOSE:
        return _MIDNIGHT[language]
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
        if span.opens == time(0) and span.closes == MIDNIGHT_CLOSE:
            parts.append(f"{days} {_ALL_DAY[language]}")
            continue
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
        lines=line_names([line.description for line in pending], language),
        total=sum(line.amount_cents for line in pending),
    )
