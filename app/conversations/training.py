"""The intent corpus and the model trained from it (`pitwall intents train`).

The corpus is every `corpus/raw/*.jsonl` file, one labelled text per line, split into
train and dev by a hash of the text: texts that read the same once case, accents,
punctuation and emoji are dropped share a split, and a dev text too close to a training
text (cosine >= 0.9 on letter trigrams) joins the training split, so dev never grades the
model on what it has seen. Choices are made on the dev split only: the model's
regularisation and feature cut-off, then the gates' thresholds.

The test split is `corpus/test/*.jsonl`, written apart by writers who never saw the rest
(the hash's old test bucket, read too often while the model was built, now trains). A
test text too close to a train or dev text is left out of the grade and trained on by
no one. It is read by `pitwall intents eval` and by the quality-floor tests, never here.

scikit-learn is needed here only (the `test` extra); the product runs the exported
arithmetic in intent_model.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.conversations import intents
from app.conversations.intent_model import (
    META_FILE,
    MODEL_FILE,
    REPLY_TO,
    IntentModel,
    features,
    file_sha256,
    fold,
)

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
SPLITS = ("train", "dev", "test")
NEAR_DUPLICATE = 0.9
# The grid searched on the dev split: inverse regularisation, the least number of training
# texts a feature must appear in, and the weight of an opt-out among the training texts.
GRID = [(c, min_df, weight) for c in (30.0, 100.0) for min_df in (1, 2) for weight in (1.0, 3.0)]


class CorpusError(ValueError):
    """A corpus row that cannot be used, named by file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    language: str
    reply_to: str
    source: str
    split: str


def dedupe_key(text: str) -> str:
    """What a text reads as once case, accents, punctuation and emoji are dropped."""
    return " ".join(re.findall(r"[a-z0-9]+", fold(text)))


def split_of(text: str) -> str:
    """train (85%) or dev (15%), fixed by the hash of the text's dedupe key.

    Buckets 85-99 were the first test split; read about eight times while the model was
    built, they were retired into train on 2026-12-07 when `corpus/test/` replaced them.
    """
    bucket = int(hashlib.sha256(dedupe_key(text).encode()).hexdigest()[:8], 16) % 100
    return "dev" if 70 <= bucket < 85 else "train"


def _rows(directory: Path, folder: str = "raw") -> Iterable[tuple[str, int, dict[str, Any]]]:
    for path in sorted((directory / folder).glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    yield path.name, number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{path.name}:{number}: not JSON ({exc.msg})") from None


def _checked(name: str, number: int, row: dict[str, Any]) -> dict[str, str]:
    where = f"{name}:{number}"
    missing = {"text", "intent", "language", "reply_to"} - row.keys()
    if missing:
        raise CorpusError(f"{where}: missing {', '.join(sorted(missing))}")
    if row["intent"] not in intents.LABELS:
        raise CorpusError(f"{where}: unknown intent {row['intent']!r}")
    if row["language"] not in ("en", "es", "fr"):
        raise CorpusError(f"{where}: unknown language {row['language']!r}")
    if row["reply_to"] not in REPLY_TO:
        raise CorpusError(f"{where}: unknown reply_to {row['reply_to']!r}")
    return {key: str(row.get(key, "")) for key in ("text", "intent", "language", "reply_to")} | {
        "source": str(row.get("source") or name.removesuffix(".jsonl"))
    }


def load_corpus(directory: Path = CORPUS_DIR) -> list[Example]:
    """Every usable row with its split, the test split's near-duplicates of the others left
    out; an exact repeat of (text, reply_to) is kept once."""
    examples = _train_and_dev(directory)
    return examples + [e for e in load_test(directory, examples) if e.split == "test"]


def _train_and_dev(directory: Path) -> list[Example]:
    rows = _unique(_checked(name, number, raw) for name, number, raw in _rows(directory))
    splits = _splits_without_near_duplicates([row["text"] for row in rows])
    return [Example(**row, split=split) for row, split in zip(rows, splits, strict=True)]


def load_test(
    directory: Path = CORPUS_DIR, known: Sequence[Example] | None = None
) -> list[Example]:
    """The test split (corpus/test/); a row within cosine 0.9 of a train or dev text is
    marked `known` and left out of the grade."""
    rows = _unique(_checked(name, number, raw) for name, number, raw in _rows(directory, "test"))
    known = _train_and_dev(directory) if known is None else known
    near = _near([e.text for e in known], [row["text"] for row in rows])
    return [
        Example(**row, split="known" if close else "test")
        for row, close in zip(rows, near, strict=True)
    ]


def _unique(rows: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for row in rows:
        if (row["text"], row["reply_to"]) not in seen:
            seen.add((row["text"], row["reply_to"]))
            kept.append(row)
    return kept


def load_fresh(directory: Path = CORPUS_DIR) -> list[Example]:
    """The fresh set (corpus/fresh/): written after the model's design was fixed, by writers
    who never saw the corpus; never trained or tuned on, graded as its own split."""
    return [
        Example(**_checked(name, number, raw), split="fresh")
        for name, number, raw in _rows(directory, "fresh")
    ]


def _splits_without_near_duplicates(texts: Sequence[str]) -> list[str]:
    splits = [split_of(text) for text in texts]
    train = [texts[i] for i, s in enumerate(splits) if s == "train"]
    held = [i for i, s in enumerate(splits) if s != "train"]
    for i, close in zip(held, _near(train, [texts[i] for i in held]), strict=True):
        if close:
            splits[i] = "train"
    return splits


def _near(known: Sequence[str], texts: Sequence[str]) -> list[bool]:
    """For each of `texts`, whether a `known` text is within NEAR_DUPLICATE on letter trigrams."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not known or not texts:
        return [False] * len(texts)
    keys = [dedupe_key(text) or text for text in [*known, *texts]]
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3)).fit_transform(keys)
    similarity = (vectors[len(known) :] @ vectors[: len(known)].T).max(axis=1).toarray().ravel()
    return [bool(best >= NEAR_DUPLICATE) for best in similarity]


def corpus_sha256(directory: Path = CORPUS_DIR) -> str:
    digest = hashlib.sha256()
    for path in sorted((directory / "raw").glob("*.jsonl")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fit(
    examples: Sequence[Example], *, c: float, min_df: int, opt_out_weight: float = 1.0
) -> IntentModel:
    """Train on `examples`; the result scores exactly as scikit-learn's predict_proba."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        analyzer=lambda doc: doc, sublinear_tf=True, min_df=min_df, lowercase=False
    )
    matrix = vectorizer.fit_transform([features(e.text, e.reply_to) for e in examples])
    classifier = LogisticRegression(
        C=c, max_iter=5000, tol=1e-6, class_weight={intents.OPT_OUT: opt_out_weight}
    )
    classifier.fit(matrix, [e.intent for e in examples])
    vocabulary = vectorizer.get_feature_names_out().tolist()
    model = IntentModel(
        vocabulary=vocabulary,
        idf=vectorizer.idf_,
        coef=classifier.coef_.T.astype(np.float32),
        intercept=classifier.intercept_,
        classes=[str(label) for label in classifier.classes_],
        meta={"params": {"C": c, "min_df": min_df}},
    )
    model.sklearn = (vectorizer, classifier)  # type: ignore[attr-defined]
    return model


def choose_thresholds(model: IntentModel, dev: Sequence[Example]) -> dict[str, float]:
    """The gates' thresholds, from the dev split only, each with a factor-two margin.

    The opt-out gate (intents.reads_as_opt_out) honours a text the model does not rank as
    an opt-out first when its opt-out probability reaches `opt_out` and `opt_out_ratio` of
    the top label's; and, when the top label is opt_in, unless opt_in leads by
    `opt_in_lead` times. `opt_out` is half the lowest opt-out probability of any dev
    opt-out, `opt_out_ratio` half the lowest ratio of a dev opt-out ranked below another
    label, `opt_in_lead` twice the highest lead of opt_in over a dev opt-out (at least 2):
    every dev opt-out is caught with room to spare (a missed opt-out breaks the law, a false
    one costs a text that says how to undo it). confident: the lowest value at which the
    labels acted on are 95% right on dev. (No threshold approves work: only a bare YES
    does, see intents.py.)
    """
    scored = [(e, model.scores(e.text, e.reply_to)) for e in dev if not _by_rule(e)]
    opt_outs = [s for e, s in scored if e.intent == intents.OPT_OUT]
    below = [s for s in opt_outs if s.top not in (intents.OPT_OUT, intents.OPT_IN)]
    under_opt_in = [s for s in opt_outs if s.top == intents.OPT_IN]
    limits = {
        "opt_out": round(
            min(0.5, 0.5 * min((s.of(intents.OPT_OUT) for s in opt_outs), default=1)), 4
        ),
        "opt_out_ratio": round(
            min(0.5, 0.5 * min((s.of(intents.OPT_OUT) / s.confidence for s in below), default=1)), 4
        ),
        "opt_in_lead": round(
            max(
                2.0,
                2 * max((s.confidence / s.of(intents.OPT_OUT) for s in under_opt_in), default=0),
            ),
            4,
        ),
    }
    confident = 0.9
    for candidate in [round(0.2 + 0.05 * i, 2) for i in range(15)]:
        acted = [
            e.intent == s.top
            for e, s in scored
            if s.confidence >= candidate and not intents.reads_as_opt_out(s, limits)
        ]
        if acted and sum(acted) / len(acted) >= 0.95:
            confident = candidate
            break
    return {**limits, "confident": confident}


def _by_rule(example: Example) -> bool:
    """Decided by a rule before the model: the gates' thresholds are not about these."""
    return (
        intents.classify_keyword(example.text) is not None
        or intents.decided_by_rule(example.text, example.reply_to) is not None
    )


def false_opt_outs(
    model: IntentModel, examples: Sequence[Example], limits: dict[str, float]
) -> int:
    """Texts that are not opt-outs but that the opt-out gate would honour as one."""
    return sum(
        intents.reads_as_opt_out(model.scores(e.text, e.reply_to), limits)
        for e in examples
        if e.intent != intents.OPT_OUT and not _by_rule(e)
    )


def accuracy(model: IntentModel, examples: Sequence[Example]) -> float:
    right = sum(model.scores(e.text, e.reply_to).top == e.intent for e in examples)
    return right / max(1, len(examples))


def train(directory: Path = CORPUS_DIR) -> tuple[IntentModel, list[dict[str, Any]]]:
    """Pick the grid point with the best dev accuracy, retrain it on train, set thresholds."""
    corpus = load_corpus(directory)
    train_set = [e for e in corpus if e.split == "train"]
    dev = [e for e in corpus if e.split == "dev"]
    results: list[dict[str, Any]] = []
    for c, min_df, weight in GRID:
        candidate = fit(train_set, c=c, min_df=min_df, opt_out_weight=weight)
        limits = choose_thresholds(candidate, dev)
        results.append(
            {
                "C": c,
                "min_df": min_df,
                "opt_out_weight": weight,
                "features": len(candidate.index),
                "dev_accuracy": accuracy(candidate, dev),
                "dev_false_opt_outs": false_opt_outs(candidate, dev, limits),
            }
        )
    # Within half a point of the best dev accuracy, the fewest texts wrongly read as opt-outs
    # (customers unsubscribed by accident); then the better accuracy; then the smaller model.
    top = max(r["dev_accuracy"] for r in results)
    best = min(
        (r for r in results if r["dev_accuracy"] >= top - 0.005),
        key=lambda r: (r["dev_false_opt_outs"], -round(r["dev_accuracy"], 3), r["features"]),
    )
    params = {"C": best["C"], "min_df": best["min_df"], "opt_out_weight": best["opt_out_weight"]}
    model = fit(
        train_set, c=params["C"], min_df=params["min_df"], opt_out_weight=params["opt_out_weight"]
    )
    model.meta = {
        "params": params,
        "thresholds": choose_thresholds(model, dev),
        "classes": model.classes,
        "corpus_sha256": corpus_sha256(directory),
        "rows": {split: sum(e.split == split for e in corpus) for split in SPLITS},
        "dev_accuracy": round(best["dev_accuracy"], 4),
        "grid": results,
    }
    return model, results


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_model(
    model: IntentModel, model_file: Path = MODEL_FILE, meta_file: Path = META_FILE
) -> str:
    """Write the model as a zip of .npy arrays with fixed dates (same model, same bytes)."""
    vocabulary = sorted(model.index, key=model.index.__getitem__)
    arrays: dict[str, np.ndarray] = {
        "vocabulary": np.frombuffer("\n".join(vocabulary).encode("utf-8"), dtype=np.uint8),
        "idf": model.idf.astype(np.float64),
        "coef": model.weights.astype(np.float32),
        "intercept": model.intercept.astype(np.float64),
    }
    model_file.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(model_file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _npy(array))
    digest = file_sha256(model_file)
    meta = {**model.meta, "model_sha256": digest}
    meta_file.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return digest
