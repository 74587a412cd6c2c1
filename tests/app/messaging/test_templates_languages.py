"""Issue 31 point 7: every text reads right in English, Spanish and French, asks for the
keywords Pitwall understands in that language, and fits two SMS segments with its link."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from app.conversations import intents
from app.conversations.texts import STAGE_WORDS
from app.messaging.cli import templates_app
from app.messaging.previews import SAMPLE_LINK, preview_all, sample_repair_order, sample_rooftop
from app.messaging.rules import status_context
from app.messaging.schemas import TemplatePreview
from app.messaging.templates import localised_store_hours, render, segments

# Voice texts are spoken (<Say>), not texted: their length costs no segment.
PREVIEWS = [
    p
    for p in preview_all(sample_rooftop())
    if not p.name.startswith("voice_") or p.name == "voice_textback"
]
# Words a template asks the customer to send back: "Reply YES", "responda SI", "Répondez AIDE".
_ASKED = re.compile(r"\b(?i:reply|responda|répondez)\s+([A-Z]{2,})\b")


def _accepted(word: str, language: str) -> bool:
    """True when Pitwall's own parsing reads `word` as a keyword from a `language` speaker."""
    if intents.YES_WORDS.get(word) == language:
        return True
    by_language = [words.get(language, ()) for words in intents.KEYWORDS.values()]
    carrier = [words["en"] for words in intents.KEYWORDS.values()]  # STOP/START/HELP, any language
    return any(word in words for words in (*by_language, *carrier))


@pytest.mark.parametrize("preview", PREVIEWS, ids=lambda p: f"{p.name}.{p.language}")
def test_every_text_fits_two_segments_with_its_page_link(preview: TemplatePreview) -> None:
    assert preview.segments <= 2, (preview.segments, preview.encoding, preview.body)


def test_spanish_and_french_texts_stay_in_the_gsm_alphabet_where_the_english_does() -> None:
    ucs2 = [f"{p.name}.{p.language}" for p in PREVIEWS if p.encoding == "UCS-2"]
    assert ucs2 == []


def test_status_texts_carry_the_page_link_in_the_count() -> None:
    linked = [p for p in PREVIEWS if SAMPLE_LINK in p.body]
    assert {p.language for p in linked} == {"en", "es", "fr"}
    assert len(SAMPLE_LINK) == 30


@pytest.mark.parametrize("preview", PREVIEWS, ids=lambda p: f"{p.name}.{p.language}")
def test_keywords_asked_for_are_the_ones_pitwall_reads_in_that_language(
    preview: TemplatePreview,
) -> None:
    for word in _ASKED.findall(preview.body):
        assert _accepted(word, preview.language), (word, preview.name, preview.language)
    if preview.language != "en":
        assert not re.search(r"\bYES\b", preview.body), preview.body  # never "Responda YES"
    if preview.language != "es":
        assert not re.search(r"\bSI\b", preview.body)


def test_store_hours_are_written_in_the_customers_language() -> None:
    hours = "Mon-Fri 7:00-18:00, Sat 8:30-16:00"
    assert localised_store_hours(hours, "en") == hours
    assert localised_store_hours(hours, "es") == "lun-vie 7:00-18:00, sab 8:30-16:00"
    assert localised_store_hours(hours, "fr") == "lun-ven 7h-18h, sam 8h30-16h"
    # A store open around the clock (the demo's) says so, in every language.
    assert localised_store_hours("Mon-Sun 0:00-24:00", "en") == "open 24 hours"
    assert localised_store_hours("Mon-Sun 0:00-24:00", "es") == "abierto 24 horas"
    ro, customer = sample_repair_order()
    spanish = status_context(ro=ro, rooftop=sample_rooftop(), customer=customer, language="es")
    assert spanish["store_hours"] == "lun-vie 7:00-18:00, sab 8:00-16:00"
    assert segments(spanish["store_hours"])[1] == "GSM-7"


def test_the_ready_text_is_two_segments_in_every_language() -> None:
    ready = {p.language: p for p in PREVIEWS if p.name == "ready_for_pickup"}
    assert {lang: (p.segments, p.encoding) for lang, p in ready.items()} == {
        "en": (2, "GSM-7"),
        "es": (2, "GSM-7"),
        "fr": (2, "GSM-7"),
    }
    assert "lun-vie" in ready["es"].body and "Mon-Fri" not in ready["es"].body
    assert "lun-ven" in ready["fr"].body


def test_the_voice_status_names_parts_once() -> None:
    rooftop = sample_rooftop()
    for language, word in (("en", "parts"), ("es", "piezas"), ("fr", "pièces")):
        said = render(
            "voice_status",
            language=language,
            context={
                "rooftop": rooftop.name,
                "vehicle": "RAV4",
                "promised": None,
                "stage_words": STAGE_WORDS[language]["awaiting_parts"],
                "waiting_on": "parts",
                "lines": "",
                "total": 0,
            },
        )
        assert said.lower().count(word) == 1, said


def test_preview_reports_segments_per_template_in_each_language() -> None:
    result = CliRunner().invoke(templates_app, ["preview"])
    assert result.exit_code == 0, result.output
    table = result.output.split("segments per language", 1)[1].splitlines()
    assert table[1].split() == ["template", "en", "es", "fr"]
    ready = next(row for row in table if row.startswith("ready_for_pickup "))
    assert ready.split()[1:] == ["2", "GSM", "2", "GSM", "2", "GSM"]


def test_common_work_is_named_in_the_customers_language_and_other_work_as_the_dms_says() -> None:
    from app.messaging.line_names import line_name

    assert line_name("Front brake pads", "es") == "pastillas de freno delanteras"
    assert line_name("  front  BRAKE pads ", "fr") == "plaquettes de frein avant"
    assert line_name("Front brake pads", "en") == "Front brake pads"
    assert line_name("Rear differential service", "es") == "Rear differential service"
    approval = next(p for p in PREVIEWS if (p.name, p.language) == ("awaiting_approval", "es"))
    assert "- pastillas de freno delanteras: $412.00" in approval.body
    assert "Front brake pads" not in approval.body
