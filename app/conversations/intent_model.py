"""The trained intent model at run time: features of a text and its context, and a linear scorer.

The model is a multinomial logistic regression over TF-IDF weighted features, trained by
`pitwall intents train` (app/conversations/training.py, scikit-learn) from the corpus in
app/conversations/corpus/. What runs here is only its arithmetic, with numpy: the
vocabulary, the IDF weights and the coefficients are read from `model/intent_model.npz`,
whose SHA-256 is recorded beside it in `model/intent_model.json` and checked on load.
The same `features` function feeds training and scoring, and a test holds this scorer's
probabilities equal to scikit-learn's own `predict_proba` on the whole corpus.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "model"
MODEL_FILE = MODEL_DIR / "intent_model.npz"
META_FILE = MODEL_DIR / "intent_model.json"

# What the customer's phone showed last: the kind of message they are replying to.
REPLY_TO = (
    "none",
    "checked_in",
    "in_repair",
    "approval_request",
    "parts_delay",
    "ready",
    "followup",
    "textback",
    "status_answer",
)

# Words, numbers, and every other visible character on its own ("?", an emoji).
_TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
_DIGITS = re.compile(r"\d+")


def fold(text: str) -> str:
    """Lower-case, accents dropped, curly quotes straightened, spaces collapsed."""
    text = text.replace("\u2019", "'").replace("\u00bf", " ").replace("\u00a1", " ")
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", plain).strip().lower()


def tokens(text: str) -> list[str]:
    """The folded text's tokens; any number becomes "0" (a time or a price, not which one)."""
    return _TOKEN.findall(_DIGITS.sub("0", fold(text)))


# Words that turn what follows around: the next three words are also marked as negated, so
# "don't text me" and "text me when it's done", "ne m'envoyez plus" and "envoyez-moi" differ.
_NEGATORS_EN = ("no", "not", "dont", "don't", "never", "didnt", "didn't", "cant", "can't", "wont")
_NEGATORS = frozenset(
    (
        *_NEGATORS_EN,
        "won't",
        "without",
        "stop",
        "quit",
        "nunca",
        "ni",
        "ne",
        "pas",
        "plus",
        "jamais",
    )
)


def _negated(words: list[str]) -> list[str]:
    found, left = [], 0
    for word in words:
        if word in _NEGATORS or word.startswith("n'"):
            left = 3
        elif left:
            found.append(f"x:{word}")
            left -= 1
    return found


def features(text: str, reply_to: str = "none") -> list[str]:
    """The model's features: words, word pairs, letter n-grams, negated words, the context.

    The context enters alone and joined with each word, so "yes" after an approval
    request and "yes" after a ready text can weigh differently.
    """
    words = tokens(text)[:200]  # a 1,600-character text says enough in its first 200 tokens
    context = reply_to if reply_to in REPLY_TO else "none"
    found = [f"c:{context}", f"n:{min(len(words), 8)}"]
    padded = ["<s>", *words, "</s>"]
    for word in words:
        found.append(f"w:{word}")
        found.append(f"c:{context}|{word}")
        if word.isalnum() or "'" in word:
            marked = f" {word} "
            for size in range(2, 6):
                found.extend(
                    f"g:{marked[i : i + size]}" for i in range(max(1, len(marked) - size + 1))
                )
    found.extend(f"b:{a} {b}" for a, b in itertools.pairwise(padded))
    found.extend(_negated(words))
    return found


_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)


def has_letters(text: str) -> bool:
    """True when the text has a letter outside any link (not only emoji, digits or a URL)."""
    return any(ch.isalpha() for ch in _URL.sub(" ", text))


@dataclass(frozen=True)
class Scores:
    """The model's probability for each label, best first."""

    ranked: tuple[tuple[str, float], ...]

    @property
    def top(self) -> str:
        return self.ranked[0][0]

    @property
    def confidence(self) -> float:
        return self.ranked[0][1]

    def of(self, label: str) -> float:
        return next((p for name, p in self.ranked if name == label), 0.0)


class IntentModel:
    """The exported logistic regression: vocabulary, IDF, coefficients, intercepts."""

    def __init__(
        self,
        *,
        vocabulary: list[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: list[str],
        meta: dict[str, Any],
    ) -> None:
        self.index = {feature: i for i, feature in enumerate(vocabulary)}
        self.idf = idf.astype(np.float64)
        self.weights = np.ascontiguousarray(coef, dtype=np.float64)  # (features, classes)
        self.intercept = intercept.astype(np.float64)
        self.classes = classes
        self.meta = meta

    def vector(self, text: str, reply_to: str) -> tuple[list[int], np.ndarray]:
        """Feature ids and their TF-IDF weights, L2-normalised (scikit-learn's sublinear TF)."""
        find = self.index.get
        counts: dict[int, int] = {}
        for feature in features(text, reply_to):
            i = find(feature)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        ids = list(counts)
        tf = np.array([1.0 + math.log(n) for n in counts.values()])
        weights = tf * self.idf[ids] if ids else tf
        norm = math.sqrt(float(weights @ weights)) if ids else 0.0
        return ids, (weights / norm if norm else weights)

    def scores(self, text: str, reply_to: str = "none") -> Scores:
        ids, weights = self.vector(text, reply_to)
        logits = (weights @ self.weights[ids] if ids else 0.0) + self.intercept
        exp = np.exp(logits - logits.max())
        probabilities = (exp / exp.sum()).tolist()
        ranked = sorted(zip(self.classes, probabilities, strict=True), key=lambda c: -c[1])
        return Scores(tuple(ranked))


class ModelError(RuntimeError):
    """The model file is missing or not the one its metadata describes."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_model(model_file: Path = MODEL_FILE, meta_file: Path = META_FILE) -> IntentModel:
    """Load and check the model: its bytes must hash to what its metadata records."""
    if not model_file.exists() or not meta_file.exists():
        raise ModelError(
            f"intent model not found at {model_file}: run `pitwall intents train` to build it"
        )
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    digest = file_sha256(model_file)
    if digest != meta.get("model_sha256"):
        raise ModelError(
            f"{model_file.name} has SHA-256 {digest[:12]}..., but {meta_file.name} records "
            f"{str(meta.get('model_sha256'))[:12]}...: the model was changed without retraining; "
            "run `pitwall intents train`"
        )
    with np.load(model_file, allow_pickle=False) as arrays:
        vocabulary = arrays["vocabulary"].tobytes().decode("utf-8").split("\n")
        return IntentModel(
            vocabulary=vocabulary,
            idf=arrays["idf"],
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            classes=[str(c) for c in meta["classes"]],
            meta=meta,
        )


@cache
def current_model() -> IntentModel:
    """The packaged model, loaded once per process."""
    return read_model()
