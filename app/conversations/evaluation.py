"""`pitwall intents eval`: the model and its gates on a held-out split, beside the old table.

Per-intent precision and recall are of the model's label; the three figures that decide
what a customer gets are of what Pitwall acts on (`Intent.name`): approvals recorded
where none was meant, opt-outs honoured, and status questions answered with no advisor.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.conversations import intents
from app.conversations.language import LANGUAGES, detect_language
from app.conversations.pattern_baseline import classify_by_patterns
from app.conversations.training import Example


@dataclass
class Figures:
    """One classifier's results on one split."""

    name: str
    rows: int = 0
    right: int = 0
    false_approvals: list[str] = field(default_factory=list)
    opt_outs: int = 0
    opt_outs_honoured: int = 0
    false_opt_outs: int = 0
    status: int = 0
    status_answered: int = 0
    unsure: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / max(1, self.rows)

    @property
    def opt_out_recall(self) -> float:
        return self.opt_outs_honoured / max(1, self.opt_outs)

    @property
    def status_recall(self) -> float:
        return self.status_answered / max(1, self.status)

    def per_label(self, label: str) -> tuple[float, float, int]:
        """Precision, recall and support of one label."""
        tp = self.confusion[(label, label)]
        predicted = sum(n for (_g, p), n in self.confusion.items() if p == label)
        support = sum(n for (g, _p), n in self.confusion.items() if g == label)
        return tp / max(1, predicted), tp / max(1, support), support

    def timing_us(self) -> tuple[float, float]:
        ordered = sorted(self.seconds)
        if not ordered:
            return 0.0, 0.0
        return ordered[len(ordered) // 2] * 1e6, ordered[
            min(len(ordered) - 1, int(len(ordered) * 0.99))
        ] * 1e6


def _model(example: Example) -> tuple[str, str]:
    """(label, action) of the model with its gates."""
    found = intents.classify(example.text, reply_to=example.reply_to)
    return found.label or found.name, found.name


def _patterns(example: Example) -> tuple[str, str]:
    """(label, action) of the table Pitwall used before: keywords, then patterns, no context."""
    found = intents.classify_keyword(example.text)
    if found is not None:
        return found, found
    label, _language = classify_by_patterns(example.text)
    return label, label


def measure(
    name: str, examples: Sequence[Example], run: Callable[[Example], tuple[str, str]]
) -> Figures:
    figures = Figures(name)
    for example in examples:
        started = time.perf_counter()
        label, action = run(example)
        figures.seconds.append(time.perf_counter() - started)
        figures.rows += 1
        figures.right += label == example.intent
        figures.confusion[(example.intent, label)] += 1
        if action == intents.APPROVE and example.intent != intents.APPROVE:
            figures.false_approvals.append(f"{example.text!r} ({example.reply_to})")
        figures.false_opt_outs += action == intents.OPT_OUT and example.intent != intents.OPT_OUT
        if example.intent == intents.OPT_OUT:
            figures.opt_outs += 1
            figures.opt_outs_honoured += action == intents.OPT_OUT
        if example.intent == intents.STATUS:
            figures.status += 1
            figures.status_answered += action == intents.STATUS
        figures.unsure += action == intents.UNSURE
    return figures


def language_accuracy(examples: Sequence[Example]) -> dict[str, float]:
    """py3langid on the texts with letters: share it names, and how often that is right."""
    with_letters = [e for e in examples if any(ch.isalpha() for ch in e.text)]
    named = [(detect_language(e.text), e.language) for e in with_letters]
    confident = [(got, want) for got, want in named if got in LANGUAGES]
    return {
        "coverage": len(confident) / max(1, len(named)),
        "accuracy": sum(g == w for g, w in confident) / max(1, len(confident)),
    }


def evaluate(examples: Sequence[Example]) -> dict[str, Any]:
    """Both classifiers on the same rows (the model first warmed up on one text)."""
    intents.classify("warm up")
    return {
        "model": measure("model", examples, _model),
        "patterns": measure("pattern table", examples, _patterns),
        "language": language_accuracy(examples),
    }


def report(examples: Sequence[Example], split: str) -> str:
    """The eval table as printed by `pitwall intents eval` and quoted in README."""
    found = evaluate(examples)
    model, patterns = found["model"], found["patterns"]
    lines = [f"split: {split}, {len(examples)} texts ({_counts(examples)})", ""]
    lines.append(f"{'':28}{'model':>12}{'pattern table':>16}")
    rows = [
        ("label accuracy", f"{model.accuracy:.1%}", f"{patterns.accuracy:.1%}"),
        (
            "status questions answered",
            _share(model.status_answered, model.status),
            _share(patterns.status_answered, patterns.status),
        ),
        (
            "opt-outs honoured",
            _share(model.opt_outs_honoured, model.opt_outs),
            _share(patterns.opt_outs_honoured, patterns.opt_outs),
        ),
        ("false approvals", str(len(model.false_approvals)), str(len(patterns.false_approvals))),
        ("opt-outs where none was meant", str(model.false_opt_outs), str(patterns.false_opt_outs)),
        ("sent to ask / advisor (unsure)", _share(model.unsure, model.rows), "-"),
        (
            "time per text, median",
            f"{model.timing_us()[0]:.0f} us",
            f"{patterns.timing_us()[0]:.0f} us",
        ),
        (
            "time per text, p99",
            f"{model.timing_us()[1]:.0f} us",
            f"{patterns.timing_us()[1]:.0f} us",
        ),
    ]
    lines += [f"{a:28}{b:>12}{c:>16}" for a, b, c in rows]
    language = found["language"]
    lines += [
        "",
        f"language (py3langid): named for {language['coverage']:.1%} of texts with letters, "
        f"right for {language['accuracy']:.1%} of those",
        "",
        f"{'label':18}{'precision':>10}{'recall':>8}{'n':>5}   (model; pattern table P/R)",
    ]
    for label in intents.LABELS:
        p, r, n = model.per_label(label)
        pp, pr, _ = patterns.per_label(label)
        lines.append(f"{label:18}{p:>10.0%}{r:>8.0%}{n:>5}   ({pp:.0%} / {pr:.0%})")
    lines += ["", "confusion (rows: true label; columns: model's label)"]
    short = [label[:6] for label in intents.LABELS]
    lines.append(f"{'':18}" + "".join(f"{s:>7}" for s in short))
    for gold in intents.LABELS:
        cells = "".join(f"{model.confusion[(gold, got)] or '.':>7}" for got in intents.LABELS)
        lines.append(f"{gold:18}{cells}")
    if model.false_approvals:
        lines += ["", "false approvals:", *(f"  {text}" for text in model.false_approvals)]
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} {part / max(1, whole):.0%}"


def _counts(examples: Sequence[Example]) -> str:
    languages = Counter(e.language for e in examples)
    return ", ".join(f"{language} {n}" for language, n in sorted(languages.items()))
