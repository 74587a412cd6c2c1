"""TwiML answers, built as XML elements so customer text can never break out of them.

ElementTree escapes `&`, `<` and `>` in text and quotes in attributes; characters XML
cannot carry at all (control characters) are dropped first.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, tostring

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def render(*verbs: Element) -> str:
    """A complete TwiML document: `<Response>` holding the verbs in order."""
    root = Element("Response")
    root.extend(verbs)
    return '<?xml version="1.0" encoding="UTF-8"?>' + tostring(root, encoding="unicode")


def message_response(body: str | None) -> str:
    """`<Response><Message>body</Message></Response>`, or an empty `<Response/>` for None."""
    return render(message(body)) if body else render()


def message(body: str) -> Element:
    element = Element("Message")
    element.text = _clean(body)
    return element


def say(text: str, *, language: str) -> Element:
    element = Element("Say", {"language": language})
    element.text = _clean(text)
    return element


def gather(*, action: str, prompt: Element, language: str, hints: str) -> Element:
    """One key or a spoken word; an empty result still calls `action`, so silence is counted."""
    element = Element(
        "Gather",
        {
            "input": "dtmf speech",
            "numDigits": "1",
            "action": action,
            "method": "POST",
            "timeout": "5",
            "language": language,
            "hints": hints,
            "actionOnEmptyResult": "true",
        },
    )
    element.append(prompt)
    return element


def dial(number: str, *, action: str, timeout: int = 20) -> Element:
    element = Element("Dial", {"action": action, "method": "POST", "timeout": str(timeout)})
    element.text = _clean(number)
    return element


def hangup() -> Element:
    return Element("Hangup")
