"""Message templates: languages, fallbacks, rooftop overrides, strict variables, SMS cost."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError
from typer.testing import CliRunner

from app.messaging.cli import sample_repair_order, sample_rooftop, templates_app
from app.messaging.rules import status_context
from app.messaging.templates import render, segments


def context(language: str = "en") -> dict[str, object]:
    ro, customer = sample_repair_order()
    return status_context(ro=ro, rooftop=sample_rooftop(), customer=customer, language=language)


def test_welcome_in_english_spanish_and_french() -> None:
    english = render("checked_in", language="en", context=context())
    assert "Dana Ruiz" in english and "Reply STOP to opt out." in english
    assert "Responda STOP" in render("checked_in", language="es", context=context("es"))
    assert "Répondez STOP" in render("checked_in", language="fr", context=context("fr"))


def test_a_language_without_its_own_file_falls_back_to_english() -> None:
    # Every kind now has en, es and fr files, so ask for a language none of them has.
    assert render("in_repair", language="de", context=context()).startswith("Sam, our technicians")


def test_approval_lists_the_lines_awaiting_approval_and_their_total() -> None:
    text = render("awaiting_approval", language="en", context=context())
    assert "- Front brake pads: $412.00\n- Wiper blades: $48.50\nTotal $460.50." in text
    assert "Oil and filter" not in text  # already approved
    assert "Reply YES to approve" in text


def test_rooftop_overrides_by_language_then_by_name() -> None:
    overrides = {
        "ready_for_pickup.es": "Listo, {{ first_name }}.",
        "ready_for_pickup": "Ready, {{ first_name }}!",
    }
    assert (
        render("ready_for_pickup", language="es", context=context(), overrides=overrides)
        == "Listo, Sam."
    )
    assert (
        render("ready_for_pickup.en", language="en", context=context(), overrides=overrides)
        == "Ready, Sam!"
    )


def test_an_unknown_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(UndefinedError):
        render(
            "ready_for_pickup",
            language="en",
            context=context(),
            overrides={"ready_for_pickup": "{{ nmae }}"},
        )


def test_overrides_cannot_reach_python_internals() -> None:
    with pytest.raises(SecurityError):
        render(
            "x",
            language="en",
            context={},
            overrides={"x": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
        )


def test_followup_textback_and_promise_templates_exist() -> None:
    for name in ("followup", "textback", "running_late", "new_promised_time"):
        for language in ("en", "es"):
            assert render(f"{name}.{language}", language=language, context=context(language))


def test_segments_and_encoding() -> None:
    assert segments("a" * 160) == (1, "GSM-7")
    assert segments("a" * 161) == (2, "GSM-7")
    assert segments("[" * 81) == (2, "GSM-7")  # the extension set costs two septets
    assert segments("á" * 70) == (1, "UCS-2")
    assert segments("á" * 71) == (2, "UCS-2")


def test_preview_prints_every_template_with_its_cost() -> None:
    result = CliRunner().invoke(templates_app, ["preview", "--language", "en"])
    assert result.exit_code == 0, result.output
    assert "== checked_in.en  2 segments, GSM-7" in result.output
    assert "== ready_for_pickup.en" in result.output and "== followup.en" in result.output
    spanish = CliRunner().invoke(templates_app, ["preview", "--language", "es"])
    assert "UCS-2" in spanish.output
