"""The pattern table Pitwall used before its trained model, kept only as the eval's yardstick.

`pitwall intents eval` prints the model's figures beside this table's on the same test
split. Nothing in the running product calls it.
"""

from __future__ import annotations

import re

from app.conversations.intent_model import fold

DECLINE, STATUS, APPROVE, OTHER = "decline_followup", "status_question", "approve", "other"

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


def classify_by_patterns(text: str) -> tuple[str, str | None]:
    """The old table's intent and language for a text (keywords are the caller's)."""
    folded = fold(text)
    for intent, rules in _COMPILED.items():
        best: tuple[int, str] | None = None
        for lang, compiled in rules.items():
            for pattern in compiled:
                found = pattern.search(folded)
                if found and (best is None or len(found.group(0)) > best[0]):
                    best = (len(found.group(0)), lang)
        if best is not None:
            return intent, best[1]
    return OTHER, None
