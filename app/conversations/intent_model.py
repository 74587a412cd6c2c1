"""The trained intent model at run time: features of a text and its context, and a linear scorer.

The model is a multinomial logistic regression over TF-IDF weighted features, trained by
`pitwall intents train` (app/conversations/training.py, scikit-learn) from the corpus in
app/conversations/corpus/. What runs here is only its arithmetic, with numpy: the
vocabulary, the IDF weights and the coefficients are read from `model/intent_model.npz`,
whose SHA-256 is recorded beside it in `model/intent_model.json` and checked on load.
The same feature functions feed training (`features`) and scoring (`IntentModel.vector`),
and a test holds this scorer's probabilities equal to scikit-learn's own `predict_proba`
on the whole corpus.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
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
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1024)
def fold(text: str) -> str:
    """Lower-case, accents dropped, curly quotes straightened, spaces collapsed.

    Cached: answering one text folds it about eight times (the keyword checks, the rules,
    the tokens). ASCII text is its own NFKD form with no combining marks: only the
    spaces and the case change.
    """
    if text.isascii():
        return _SPACES.sub(" ", text).strip().lower()
    text = text.replace("\u2019", "'").replace("\u00bf", " ").replace("\u00a1", " ")
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", plain).strip().lower()


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
    words, context = _words_and_context(text, reply_to)
    found = _text_features(words, context)
    for word in words:
        found.extend(_word_features(word, context))
    found.extend(_pair_features(words))
    return found


def _words_and_context(text: str, reply_to: str) -> tuple[list[str], str]:
    words = tokens(text)[:200]  # a 1,600-character text says enough in its first 200 tokens
    return words, reply_to if reply_to in REPLY_TO else "none"


def _text_features(words: list[str], context: str) -> list[str]:
    """The features that come first: the context alone and the length."""
    return [f"c:{context}", f"n:{min(len(words), 8)}"]


def _word_features(word: str, context: str) -> list[str]:
    """One word's features, in order: itself, with the context, its letter n-grams."""
    found = [f"w:{word}", f"c:{context}|{word}"]
    if word.isalnum() or "'" in word:
        marked = f" {word} "
        for size in range(2, 6):
            found.extend(f"g:{marked[i : i + size]}" for i in range(max(1, len(marked) - size + 1)))
    return found


def _pair_features(words: list[str]) -> list[str]:
    """The features that come last: word pairs, then negated words."""
    padded = ["<s>", *words, "</s>"]
    return [*(f"b:{a} {b}" for a, b in itertools.pairwise(padded)), *_negated(words)]


_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)


def has_letters(text: str) -> bool:
    """True when the text has a letter outside any link (not only emoji, digits or a URL)."""
    return any(ch.isalpha() for ch in _URL.sub(" ", text))


class _Sublinear(dict[int, float]):
    """1 + ln(n) of a feature's count n, each computed once: most counts are 1, 2 or 3."""

    def __missing__(self, count: int) -> float:
        value = self[count] = 1.0 + math.log(count)
        return value


_SUBLINEAR_TF = _Sublinear()


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
        # Words recur from text to text ("my", "car", "ready"): their ids, per context.
        self._word_ids = lru_cache(maxsize=16_384)(self._word_ids_uncached)

    def _known(self, found: Iterable[str]) -> tuple[int, ...]:
        """The ids of the features in the vocabulary, in order (the others are dropped)."""
        find = self.index.get
        return tuple(i for i in map(find, found) if i is not None)

    def _word_ids_uncached(self, word: str, context: str) -> tuple[int, ...]:
        return self._known(_word_features(word, context))

    def vector(self, text: str, reply_to: str) -> tuple[list[int], np.ndarray]:
        """Feature ids and their TF-IDF weights, L2-normalised (scikit-learn's sublinear TF).

        The ids come in the order of `features` (the order of the sums below, so the
        same floats): a word's ids are looked up once per word and context, not per text.
        """
        words, context = _words_and_context(text, reply_to)
        counts = Counter(
            itertools.chain(
                self._known(_text_features(words, context)),
                *(self._word_ids(word, context) for word in words),
                self._known(_pair_features(words)),
            )
        )
        ids = list(counts)
        tf = np.array(list(map(_SUBLINEAR_TF.__getitem__, counts.values())))
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
