"""Pitwall's TwiML as the sandbox's phone reads it: texts, spoken words, a dial, a gather."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET


@dataclass
class TwimlAnswer:
    """What Pitwall's TwiML asked for, in the parts the phone view shows."""

    messages: list[str] = field(default_factory=list)
    says: list[str] = field(default_factory=list)
    dial_number: str | None = None
    dial_action: str | None = None
    has_dial: bool = False
    gather_action: str | None = None  # a <Gather> waits for keypad digits (or speech)


def parse_twiml(text: str) -> TwimlAnswer:
    """Read ``<Response>`` TwiML safely (defusedxml); unreadable XML gives an empty answer."""
    answer = TwimlAnswer()
    if not text.strip():
        return answer
    try:
        root: Element = SafeET.fromstring(text)
    except Exception:  # any parse or defusedxml refusal: show nothing rather than fail
        return answer
    for node in root.iter():
        if node.tag == "Message":
            body = node.find("Body")
            text = "".join(body.itertext()) if body is not None else (node.text or "")
            answer.messages.append(text.strip())
        elif node.tag == "Say":
            answer.says.append("".join(node.itertext()).strip())
        elif node.tag == "Gather":
            answer.gather_action = node.get("action") or ""
        elif node.tag == "Dial":
            answer.has_dial = True
            answer.dial_action = node.get("action")
            number = node.find("Number")
            target = number.text if number is not None else node.text
            answer.dial_number = (target or "").strip() or None
    return answer


def gather_url(url: str, answer: TwimlAnswer) -> str | None:
    """Where the keys go: the ``<Gather action>``, or (as Twilio does) the same URL again."""
    if answer.gather_action is None:
        return None
    return urljoin(url, answer.gather_action) if answer.gather_action else url
