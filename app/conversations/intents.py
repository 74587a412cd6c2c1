"""What a customer's text means: carrier keywords first, then the trained model, then the gates.

1. Keywords (STOP, START, HELP and their kin) match the whole message, trimmed and
   case-insensitive, as the carriers' rules require, ahead of anything learnt; so do a
   first sentence that is only an opt-out or opt-in keyword and a keyword with only
   courtesy words around it ("stop please", "alto por favor"), which can mean nothing else.
2. The model (app/conversations/intent_model.py) scores every label given the text and
   what Pitwall last sent this phone (`reply_to`).
3. Gates that no score can pass:
   - a likely opt-out wins even when it is not the top label (`reads_as_opt_out`): the
     FCC's 2025 revocation rule honours "reasonable wording". "Likely" weighs the opt-out
     probability against the top label's, and an opt-in wins only by a clear lead;
   - work is approved only by a bare YES / SI / OUI answering an approval request (the
     original, or Pitwall's confirmation); any other yes the model hears ("go ahead with
     the brakes", "ok", "sure") becomes `confirm_approval`, answered with the items and the
     total and a request for that bare YES. A shop's authorisation record is then always a
     plain yes to a message that named the work and the price, and no reading of the
     model can approve work by itself;
   - below the confidence threshold the answer is `unsure`, and Pitwall asks or hands
     the text to an advisor with the model's guesses, never acting on a guess.
The thresholds are chosen on the corpus's dev split by `pitwall intents train` and
recorded in the model's metadata; the test split never tunes anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.conversations.intent_model import REPLY_TO, Scores, current_model, fold, has_letters
from app.conversations.language import detect_language

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"
STATUS = "status_question"
APPROVE = "approve"
DECLINE = "decline_followup"
OTHER = "other"
INTENTS = (OPT_OUT, OPT_IN, HELP, STATUS, APPROVE, DECLINE, OTHER)
# The model's finer labels, beside the seven above.
WEAK_YES = "weak_yes"
DECLINE_WORK = "decline_work"
BOOKING = "booking"
ACKNOWLEDGE = "acknowledge"
QUESTION = "question"
LABELS = (*INTENTS, WEAK_YES, DECLINE_WORK, BOOKING, ACKNOWLEDGE, QUESTION)
# What the gates answer instead of a label.
CONFIRM_APPROVAL = "confirm_approval"  # a yes that Pitwall confirms, naming items and total
UNSURE = "unsure"  # below the confidence threshold: ask, or an advisor decides

__all__ = ["REPLY_TO", "classify", "fold"]

# Whole-message keywords (after trimming, upper-casing and dropping accents and a final "!"/".").
# The English words are the carriers' and CTIA's; "ALTO"/"PARAR"/"ARRET" are what Spanish and
# French speakers send, and matter most on WhatsApp where no carrier filters them.
KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    OPT_OUT: {
        "en": (
            "STOP",
            "STOPALL",
            "STOP ALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "OPT OUT",
            "OPT-OUT",
        ),
        "es": ("ALTO", "PARAR", "BAJA", "CANCELAR"),
        "fr": ("ARRET", "ARRETER", "DESABONNER", "FIN"),
    },
    OPT_IN: {"en": ("START", "UNSTOP"), "es": ("INICIAR", "ALTA"), "fr": ("DEMARRER",)},
    HELP: {"en": ("HELP", "INFO"), "es": ("AYUDA",), "fr": ("AIDE",)},
}
_OPT_OUT_WORDS = frozenset(word for words in KEYWORDS[OPT_OUT].values() for word in words)
# "YES" re-subscribes only someone who is opted out; otherwise it answers a question.
YES_WORDS = {"YES": "en", "Y": "en", "SI": "es", "OUI": "fr"}


@dataclass(frozen=True)
class Intent:
    """What Pitwall acts on, the language the text is in, and how sure the model was.

    `name` is a label of LABELS or a gate's answer (CONFIRM_APPROVAL, UNSURE); `label` is
    the model's own top label; `guesses` its best three with their probabilities.
    """

    name: str
    language: str | None = None
    confidence: float = 1.0
    label: str | None = None
    guesses: tuple[tuple[str, float], ...] = field(default=())
    by_keyword: bool = False  # a carrier keyword (or a bare YES from an opted-out sender)


def _keyword(text: str) -> str:
    return fold(text).upper().rstrip(".!").strip()


def depends_on_opt_out(text: str) -> bool:
    """True when `classify` may answer differently for an opted-out sender (a bare "YES")."""
    return _keyword(text) in YES_WORDS


def is_yes_keyword(text: str) -> bool:
    """A bare YES / SI / OUI: the only answer that confirms an approval Pitwall asked about."""
    return _keyword(text) in YES_WORDS


_SENTENCE = re.compile(r"[.!,;:\n]+")


def opens_with_opt_out_word(text: str) -> bool:
    """The text's first sentence is an opt-out keyword alone ("Stop. Wrong person.", "STOP!! ..").

    The FCC's 2025 rule names stop, quit, end, revoke, opt out, cancel and unsubscribe as
    revoking per se; used as a sentence of their own they cannot mean "stop by" or "cancel
    my appointment".
    """
    first = _SENTENCE.split(fold(text), maxsplit=1)[0].strip().upper()
    return bool(first) and first in _OPT_OUT_WORDS and len(fold(text)) > len(first)


_OPT_IN_WORDS = frozenset(word for words in KEYWORDS[OPT_IN].values() for word in words)


def opens_with_opt_in_word(text: str, reply_to: str = "none") -> bool:
    """The first sentence is START / UNSTOP / ... alone ("Start. I want updates on my car").

    Not in answer to an approval request, where "Start. ..." may mean the work.
    """
    first = _SENTENCE.split(fold(text), maxsplit=1)[0].strip().upper()
    return (
        reply_to != "approval_request"
        and bool(first)
        and first in _OPT_IN_WORDS
        and len(fold(text)) > len(first)
    )


# Words that only soften or repeat a keyword: "stop please", "STOP STOP STOP", "alto por favor",
# "arrêt svp", "unsubscribe thanks", "start again pls".
_POLITE_EN = ("PLEASE", "PLS", "PLZ", "NOW", "THANKS", "THANK", "YOU", "THX", "TY", "ASAP")
_POLITE_ES = ("POR", "FAVOR", "PORFA", "PORFAVOR", "YA", "GRACIAS", "ALREADY")
_POLITE_FR = ("SVP", "STP", "MERCI", "MAINTENANT", "S", "IL", "VOUS", "PLAIT")
_COURTESY = frozenset((*_POLITE_EN, *_POLITE_ES, *_POLITE_FR))


def keyword_with_courtesy(text: str, reply_to: str = "none") -> str | None:
    """The intent of a keyword said with nothing but courtesy words (or itself) around it.

    Not a carrier keyword (the carriers match the whole message only), but no other
    reading is reasonable. An opt-in this way is not taken in answer to an approval
    request ("start now please" may mean the work).
    """
    words = re.findall(r"[A-Z0-9]+", fold(text).upper())
    for intent in (OPT_OUT, OPT_IN, HELP):
        if intent == OPT_IN and reply_to == "approval_request":
            continue
        ignored = _COURTESY | ({"AGAIN"} if intent == OPT_IN else set())
        kept = [word for word in words if word not in ignored]
        known = {word for by_lang in KEYWORDS[intent].values() for word in by_lang}
        if kept and (" ".join(kept) in known or all(word in known for word in kept)):
            return intent
    return None


def decided_by_rule(text: str, reply_to: str = "none") -> str | None:
    """The intent the rules give a text that is not a bare carrier keyword, or None."""
    if opens_with_opt_out_word(text):
        return OPT_OUT
    softened = keyword_with_courtesy(text, reply_to)
    if softened is not None:
        return softened
    return OPT_IN if opens_with_opt_in_word(text, reply_to) else None


def classify_keyword(text: str) -> str | None:
    """The carrier keyword's intent when the whole message is one (STOP, START, HELP, ...)."""
    word = _keyword(text)
    return next(
        (
            intent
            for intent, by_lang in KEYWORDS.items()
            for words in by_lang.values()
            if word in words
        ),
        None,
    )


def reads_as_opt_out(scores: Scores, limits: Mapping[str, float]) -> bool:
    """The opt-out gate: a likely opt-out is honoured even when it is not the top label.

    - the model's top label is opt_out: honoured;
    - its top label is opt_in: honoured unless opt_in leads opt_out by `opt_in_lead` times
      (re-subscribing someone who meant to leave is the worse mistake of the two: a missed
      opt-in is undone by texting START);
    - any other top label: honoured when the opt-out probability reaches `opt_out` and is
      at least `opt_out_ratio` of the top label's (an ordinary question the model reads
      confidently, with a little opt-out probability, is not unsubscribed).
    All three limits are set on the dev split with a factor-two margin (training.py).
    """
    p = scores.of(OPT_OUT)
    if scores.top == OPT_OUT:
        return True
    if scores.top == OPT_IN:
        return scores.confidence < limits["opt_in_lead"] * p
    return p >= limits["opt_out"] and p >= limits["opt_out_ratio"] * scores.confidence


def classify(text: str, *, opted_out: bool = False, reply_to: str = "none") -> Intent:
    """Classify one inbound message.

    `opted_out`: the sender is opted out on this channel. `reply_to`: the kind of message
    Pitwall last sent this phone (intent_model.REPLY_TO), "none" when there is none recent.
    """
    word = _keyword(text)
    for intent, by_lang in KEYWORDS.items():
        for lang, words in by_lang.items():
            if word in words:
                return Intent(intent, lang, label=intent, by_keyword=True)
    if word in YES_WORDS and opted_out:
        return Intent(OPT_IN, YES_WORDS[word], label=OPT_IN, by_keyword=True)
    language = detect_language(text)
    ruled = decided_by_rule(text, reply_to)
    if ruled is not None:
        return Intent(ruled, language, 1.0, ruled)
    model = current_model()
    scores = model.scores(text, reply_to)
    guesses = scores.ranked[:3]
    if not has_letters(text):
        # Only emoji, digits or punctuation: too little to act on; an advisor reads it.
        return Intent(UNSURE, language, 0.0, scores.top, guesses)
    if reads_as_opt_out(scores, model.meta["thresholds"]):
        return Intent(OPT_OUT, language, scores.of(OPT_OUT), OPT_OUT, guesses)
    limits = model.meta["thresholds"]
    label, confidence = scores.top, scores.confidence
    if label in (APPROVE, WEAK_YES):
        # Only a bare YES / SI / OUI to an approval request records work without asking
        # again; every other yes, however clear, is answered with the items and the total.
        explicit = reply_to == "approval_request" and is_yes_keyword(text)
        return Intent(
            APPROVE if explicit else CONFIRM_APPROVAL, language, confidence, label, guesses
        )
    if confidence < limits["confident"]:
        return Intent(UNSURE, language, confidence, label, guesses)
    return Intent(label, language, confidence, label, guesses)


def warm_up() -> None:
    """Load the model and the language identifier now (about 0.7 s), not on the first text."""
    classify("is my car ready?")
