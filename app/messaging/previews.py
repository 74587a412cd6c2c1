"""Message templates rendered against a sample RO: `pitwall templates preview` and the admin
template editor show the same text, with segment counts per language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import TemplateError

from app.config import RooftopConfig
from app.customers.models import Customer
from app.dealers.models import Rooftop
from app.messaging.rules import status_context
from app.messaging.schemas import TemplatePreview
from app.messaging.templates import available_kinds, languages_for, render, segments
from app.repair_orders.models import RepairOrder, RoLine, Vehicle

# Status texts and follow-ups end with the customer's page link (PITWALL_PUBLIC_URL + a
# short path): segment counts use a link of a typical length, 30 characters.
SAMPLE_LINK = "https://pw.example.com/s/Ab3xQ"


def sample_rooftop() -> Rooftop:
    """A made-up rooftop for previews without a database."""
    config = RooftopConfig.model_validate(
        {
            "slug": "sample",
            "name": "Sample Motors",
            "timezone": "America/Los_Angeles",
            "sms_from": "+14155550100",
            "service_desk": "+14155550199",
            "dms": {"kind": "simulator"},
        }
    )
    return Rooftop(
        slug=config.slug,
        name=config.name,
        timezone=config.timezone,
        sms_from=config.sms_from,
        service_desk=config.service_desk,
        config=config.model_dump(mode="json"),
    )


def sample_repair_order() -> tuple[RepairOrder, Customer]:
    """A transient RO with an advisor, a promised time and lines awaiting approval."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ro = RepairOrder(
        ro_number="R1001",
        advisor_name="Dana Ruiz",
        raw_status="WAITAPPR",
        stage="awaiting_approval",
        opened_at=now,
        promised_at=now + timedelta(hours=5),
        vehicle=Vehicle(year=2021, make="Toyota", model="RAV4"),
        lines=[
            RoLine(
                line_code="A",
                op_code="OILCHG",
                description="Oil and filter",
                amount_cents=8995,
                status="approved",
            ),
            RoLine(
                line_code="B",
                op_code="BRKPAD",
                description="Front brake pads",
                amount_cents=41200,
                status="pending",
            ),
            RoLine(
                line_code="C",
                op_code="WIPER",
                description="Wiper blades",
                amount_cents=4850,
                status="pending",
            ),
        ],
    )
    return ro, Customer(first_name="Sam", last_name="Lee", language="en")


# Answers to customers' texts and calls (app.conversations) take these variables.
CONVERSATION_PREFIXES = (
    "answer_",
    "voice_",
    "help_",
    "stop_",
    "start_",
    "household_",
    "unknown_",
    "approval_",
    "clarify_",
)


def conversation_sample(rooftop: Rooftop, language: str) -> dict[str, Any]:
    """What app.conversations hands its templates, for a car waiting on approval."""
    from app.conversations.texts import STAGE_WORDS

    return {
        "rooftop": rooftop.name,
        "desk": rooftop.service_desk or rooftop.sms_from,
        "hours": "Monday to Friday 7 AM to 6 PM, Saturday 8 AM to 4 PM",
        "first_name": "Sam",
        "vehicle": "2021 Toyota RAV4",
        "stage_words": STAGE_WORDS[language]["awaiting_approval"],
        "promised": {"en": "4:00 PM today", "es": "hoy a las 16:00", "fr": "aujourd'hui à 16 h 00"}[
            language
        ],
        "advisor": "Dana Ruiz",
        "waiting_on": "approval",
        "lines": "Front brake pads",
        "total": 41200,
        "choices": ["RAV4", "F-150"],
        "after_hours": True,
        "opens": {"en": "7:00 AM tomorrow", "es": "mañana a las 07:00", "fr": "demain à 7 h 00"}[
            language
        ],
    }


def sample_context(rooftop: Rooftop, kind: str, language: str) -> dict[str, Any]:
    """What `kind` is rendered with in `language`, for a sample customer and RO."""
    if kind.startswith(CONVERSATION_PREFIXES):
        context = conversation_sample(rooftop, language)
    else:
        ro, customer = sample_repair_order()
        context = status_context(ro=ro, rooftop=rooftop, customer=customer, language=language)
    context.setdefault("page_link", SAMPLE_LINK)
    return context


def preview_all(rooftop: Rooftop, *, language: str | None = None) -> list[TemplatePreview]:
    """Render every template (each language it has, or just `language`) for `rooftop`."""
    overrides = rooftop.settings.templates
    previews: list[TemplatePreview] = []
    for kind in available_kinds():
        wanted = [language] if language else languages_for(kind)
        for lang in wanted:
            context = sample_context(rooftop, kind, lang)
            try:
                body = render(kind, language=lang, context=context, overrides=overrides)
            except TemplateError as exc:
                body = f"!! template error: {exc}"
            count, encoding = segments(body)
            previews.append(
                TemplatePreview(
                    name=kind, language=lang, body=body, segments=count, encoding=encoding
                )
            )
    return previews
