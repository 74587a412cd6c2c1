"""Which language detector names a customer's language more often, and how rightly.

Run after `pip install lingua-language-detector` (not a dependency of Pitwall):
    .venv/bin/python scripts/compare_language_detectors.py [--split dev|test|fresh]
Both detectors are restricted to English, Spanish and French and must reach the same
confidence (app/conversations/language.py's MIN_CONFIDENCE) to name a language.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from lingua import Language, LanguageDetectorBuilder

from app.conversations.language import MIN_CONFIDENCE, language_scores
from app.conversations.training import load_corpus, load_fresh

CODES = {Language.ENGLISH: "en", Language.SPANISH: "es", Language.FRENCH: "fr"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="dev", choices=["dev", "test", "fresh"])
    split = parser.parse_args().split
    rows = load_fresh() if split == "fresh" else [e for e in load_corpus() if e.split == split]
    rows = [e for e in rows if any(ch.isalpha() for ch in e.text)]
    lingua = LanguageDetectorBuilder.from_languages(*CODES).build()

    def by_lingua(text: str) -> tuple[str, float]:
        best = lingua.compute_language_confidence_values(text)[0]
        return CODES[best.language], best.value

    detectors: dict[str, Callable[[str], tuple[str, float]]] = {
        "py3langid": language_scores,
        "lingua": by_lingua,
    }
    print(f"{split}: {len(rows)} texts with letters; a language is named at >= {MIN_CONFIDENCE}")
    for name, detect in detectors.items():
        for e in rows[:20]:  # models loaded before the clock starts
            detect(e.text)
        started = time.perf_counter()
        found = [(detect(e.text), e.language) for e in rows]
        seconds = time.perf_counter() - started
        named = [(language, want) for (language, p), want in found if p >= MIN_CONFIDENCE]
        right = sum(language == want for language, want in named)
        top1 = sum(g == w for (g, _), w in found) / len(rows)
        print(
            f"{name:10} named {len(named) / len(rows):6.1%},"
            f" right {right / max(1, len(named)):6.1%} of those, top-1 right {top1:6.1%},"
            f" {seconds / len(rows) * 1e6:5.0f} us a text"
        )


if __name__ == "__main__":
    main()
