"""Which language a customer wrote in: English, Spanish or French, or None when it cannot tell.

py3langid (a maintained port of langid.py, which ships its own model) restricted to the
three languages Pitwall answers in. Chosen over lingua-language-detector on the corpus's
dev split (`pitwall intents eval` prints both on the test split): at the threshold below
it kept more texts for the same accuracy and took less than half the time. A short
"ok" or "👍" says nothing about a language: those come back None, and the customer's
known language is used instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any

LANGUAGES = ("en", "es", "fr")
# Below this normalised probability the text is too short or too mixed to say.
MIN_CONFIDENCE = 0.9


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def language_scores(text: str) -> tuple[str, float]:
    """The likeliest of the three languages and its probability."""
    language, probability = _identifier().classify(text)
    return str(language), float(probability)


def detect_language(text: str) -> str | None:
    """The language of `text` when the identifier is confident, else None."""
    if not any(ch.isalpha() for ch in text):
        return None
    language, probability = language_scores(text)
    return language if probability >= MIN_CONFIDENCE else None
