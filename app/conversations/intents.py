"""What a customer's text means: a small rules-first classifier, one pattern table per language.

Keywords (STOP, START, HELP and their kin) match the whole message, trimmed and
case-insensitive, as the carriers' rules require. Everything else is a list of
regular expressions searched in the normalised text. To teach it a new phrase,
add a pattern to the right row of `PATTERNS`; the test table in
tests/app/conversations/test_intents.py shows whether it helped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"
STATUS = "status_question"
APPROVE = "approve"
DECLINE = "decline_followup"
OTHER = "other"
INTENTS = (OPT_OUT, OPT_IN, HELP, STATUS, APPROVE, DECLINE, OTHER)

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
        "fr": ("ARRET", "ARRETER", "DESABONNER"),
    },
    OPT_IN: {"en": ("START", "UNSTOP"), "es": ("INICIAR", "ALTA"), "fr": ("DEMARRER",)},
    HELP: {"en": ("HELP", "INFO"), "es": ("AYUDA",), "fr": ("AIDE",)},
}
# "YES" re-subscribes only someone who is opted out; otherwise it approves work.
YES_WORDS = ("YES", "Y", "SI", "OUI")

# Searched in order: the first intent with a matching pattern wins, so the more specific
# intents (declining, then status) come before the broad "yes".
PATTERNS: dict[str, dict[str, tuple[str, ...]]] = {
    DECLINE: {
        "en": (
            r"^(no|nope|nah|no thanks?|no thank you|not now|not right now|not yet|maybe later)\b",
            r"\bstop (reminding|texting|sending|messaging|bugging)\b",
            r"\b(don'?t|do not) (need|want) (it|that|this|them)\b",
            r"\b(not interested|no longer interested|already (had|got) (it|that) done)\b",
            r"\b(i'?ll pass|pass for now|remove me from (the )?reminders)\b",
        ),
        "es": (
            r"^(no gracias|ahora no|todavia no|mas tarde|no)\b",
            r"\b(no me interesa|deje(n)? de (mandar|enviar)|no (lo|la) necesito)\b",
        ),
        "fr": (
            r"^(non merci|pas maintenant|plus tard|non)\b",
            r"\b(pas interesse|arretez de m'?envoyer|je n'?en ai pas besoin)\b",
        ),
    },
    STATUS: {
        "en": (
            r"\b(is|are) (it|my [\w-]+|the [\w-]+|she|he|they)( [\w-]+)?"
            r" (ready|done|finished|fixed)\b",
            r"\b(ready|done|finished) yet\b",
            r"\bwhen (will|can|is|would|should)\b.*\b(ready|done|finished|pick|back|fixed)",
            r"\bstatus\b",
            r"\b(any )?(update|news)s?\b( on| about)?",
            r"\bhow('?s| is) (it|my \w+|the \w+) (going|coming|looking)\b",
            r"\bcan i (come )?(get|pick|grab)\b",
            r"\bwhat time\b.*\b(ready|done|pick)",
            r"\bhow (much )?longer\b",
            r"\beta\b",
            r"^ready\W*$",
        ),
        "es": (
            r"\b(ya )?esta (listo|lista)\b",
            r"\b(listo|lista) (mi|el|la)\b",
            r"\bcuando (estara|esta|va a estar|puedo (recoger|pasar))\b",
            r"\b(como va|alguna novedad|hay noticias|que paso con) ",
            r"\bestado de mi\b",
        ),
        "fr": (
            r"\b(est-ce que )?(ma|mon|la|le) \w+ (est|sera) (prete?|pret|reparee?|finie?)\b",
            r"\best-(elle|il) (prete?|pret|finie?)\b",
            r"\bquand (est-ce que|sera|pourrai|puis-je)\b",
            r"\b(des nouvelles|ou en est)\b",
        ),
    },
    APPROVE: {
        "en": (
            r"^(yes|y|yeah|yep|yup|ya|sure|ok|okay|k|approve[d]?|approved|sounds good|go ahead"
            r"|do it|please do|please proceed|proceed)\b",
            r"\b(go ahead|approve[d]?|you can do (it|that|the work)|please (do|fix|proceed))\b",
            r"\bok(ay)? (go ahead|do it|fix it|approved?)\b",
        ),
        "es": (
            r"^(si|claro|de acuerdo|adelante|esta bien|ok)\b",
            r"\b(apruebo|autorizo|hagan(lo)?)\b",
        ),
        "fr": (r"^(oui|d'accord|allez-y|ok)\b", r"\b(j'?approuve|j'?autorise|allez-y)\b"),
    },
}

_COMPILED = {
    intent: {lang: tuple(re.compile(p) for p in pats) for lang, pats in by_lang.items()}
    for intent, by_lang in PATTERNS.items()
}


@dataclass(frozen=True)
class Intent:
    """The classified intent and, when a language-specific rule matched, that language."""

    name: str
    language: str | None = None


def fold(text: str) -> str:
    """Lower-case, accents dropped, curly quotes straightened, spaces collapsed."""
    text = text.replace("\u2019", "'").replace("\u00bf", " ").replace("\u00a1", " ")
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", plain).strip().lower()


def _keyword(text: str) -> str:
    return fold(text).upper().rstrip(".!").strip()


def depends_on_opt_out(text: str) -> bool:
    """True when `classify` may answer differently for an opted-out sender (a bare "YES")."""
    return _keyword(text) in YES_WORDS


def classify(text: str, *, opted_out: bool = False) -> Intent:
    """Classify one inbound message. `opted_out`: the sender is opted out on this channel."""
    word = _keyword(text)
    for intent, by_lang in KEYWORDS.items():
        for lang, words in by_lang.items():
            if word in words:
                return Intent(intent, lang)
    if word in YES_WORDS and opted_out:
        return Intent(OPT_IN, "en" if word in ("YES", "Y") else None)
    folded = fold(text)
    if not folded:
        return Intent(OTHER)
    for intent, rules in _COMPILED.items():
        # The language whose rule covers the most text wins ("no gracias" is Spanish, not "no").
        best: tuple[int, str] | None = None
        for lang, compiled in rules.items():
            for pattern in compiled:
                found = pattern.search(folded)
                if found and (best is None or len(found.group(0)) > best[0]):
                    best = (len(found.group(0)), lang)
        if best is not None:
            return Intent(intent, best[1])
    return Intent(OTHER)
