"""Message text: Jinja2 templates in templates/messages/, rendered safely, counted in segments.

Files are `templates/messages/<kind>.<language>.txt.j2`; a language without its own
file falls back to English. A rooftop may override a template in its config
(`[rooftop.templates]`): the key `"<kind>.<language>"` wins, then the bare
`"<kind>"` (which then applies to every language without its own override).

The environment is sandboxed (a dealer-written override cannot reach Python
internals) and undefined variables are errors, so a typo in a template fails the
preview and the enqueue instead of texting a customer an empty hole. Autoescape
is off: this is SMS text, and every value in the context is plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "messages"
LANGUAGES = ("en", "es", "fr")
FALLBACK_LANGUAGE = "en"

# GSM 03.38: the basic set costs one septet, the extension set two.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

Encoding = Literal["GSM-7", "UCS-2"]


class TemplateMissing(LookupError):
    """No file and no override for a template name, in any language."""


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=False,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = format_money
    return env


def split_name(name: str) -> tuple[str, str | None]:
    """`"followup.en"` -> (`"followup"`, `"en"`); `"followup"` -> (`"followup"`, None)."""
    kind, _, suffix = name.partition(".")
    return kind, (suffix or None)


def _template(kind: str, language: str, overrides: Mapping[str, str] | None) -> Template:
    env = _environment()
    overrides = overrides or {}
    for key in (f"{kind}.{language}", kind):
        if key in overrides:
            return env.from_string(overrides[key])
    for lang in dict.fromkeys((language, FALLBACK_LANGUAGE)):
        try:
            return env.get_template(f"{kind}.{lang}.txt.j2")
        except TemplateNotFound:
            continue
    raise TemplateMissing(
        f"no message template {kind!r}: add templates/messages/{kind}.en.txt.j2 "
        f"or a rooftop override {kind!r}"
    )


def render(
    name: str,
    *,
    language: str,
    context: Mapping[str, Any],
    overrides: Mapping[str, str] | None = None,
) -> str:
    """Render message template `name` (e.g. "ready_for_pickup", or "followup.en") as plain text.

    `language` decides the file (a suffix in `name` is accepted and ignored in its
    favour); missing languages fall back to English. Raises jinja2's
    UndefinedError when the template uses a variable the context lacks.
    """
    kind, _suffix = split_name(name)
    text = _template(kind, language, overrides).render(**context)
    # Templates are written over several lines for readability; SMS gets single spaces.
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def available_kinds() -> list[str]:
    """Every template kind with a file in templates/messages/."""
    return sorted({path.name.split(".")[0] for path in TEMPLATE_DIR.glob("*.txt.j2")})


def languages_for(kind: str) -> list[str]:
    """Languages with their own file for `kind`."""
    return [lang for lang in LANGUAGES if (TEMPLATE_DIR / f"{kind}.{lang}.txt.j2").exists()]


def segments(body: str) -> tuple[int, Encoding]:
    """How many SMS segments `body` costs, and in which encoding.

    GSM-7: 160 septets in one segment, 153 each when concatenated; anything
    outside GSM 03.38 makes the whole message UCS-2: 70 units, 67 concatenated.
    """
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in body):
        septets = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in body)
        return (1 if septets <= 160 else -(-septets // 153)), "GSM-7"
    units = len(body.encode("utf-16-le")) // 2  # characters beyond the BMP take two
    return (1 if units <= 70 else -(-units // 67)), "UCS-2"


# Store hours as the dealer file writes them ("Mon-Fri 7:00-18:00, Sat 8:00-16:00"),
# written for a text in the customer's language. Day names stay in the GSM-7 alphabet
# ("sab", not "sáb"): one accent would make the whole text UCS-2, twice the segments.
_DAY_ABBREVIATIONS = {
    "es": {"mon": "lun", "tue": "mar", "wed": "mie", "thu": "jue", "fri": "vie", "sat": "sab",
           "sun": "dom"},
    "fr": {"mon": "lun", "tue": "mar", "wed": "mer", "thu": "jeu", "fri": "ven", "sat": "sam",
           "sun": "dim"},
}  # fmt: skip
_DAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)\b", re.IGNORECASE)
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")


_ALL_DAY = re.compile(r"^\s*mon\s*-\s*sun\s+0?0:00\s*-\s*24:00\s*$", re.IGNORECASE)
_OPEN_ALL_DAY = {"en": "open 24 hours", "es": "abierto 24 horas", "fr": "ouvert 24h sur 24"}


def localised_store_hours(text: str, language: str) -> str:
    """ "Mon-Fri 7:00-18:00" -> es "lun-vie 7:00-18:00", fr "lun-ven 7h-18h"; en unchanged.

    A store open around the clock reads "open 24 hours", not "Mon-Sun 0:00-24:00".
    """
    if _ALL_DAY.match(text):
        return _OPEN_ALL_DAY.get(language, _OPEN_ALL_DAY["en"])
    names = _DAY_ABBREVIATIONS.get(language)
    if names is None:
        return text
    text = _DAY.sub(lambda m: names[m.group(1).lower()], text)
    if language == "fr":
        text = _CLOCK.sub(lambda m: f"{int(m[1])}h" + ("" if m[2] == "00" else m[2]), text)
    return text


def format_money(cents: int) -> str:
    """Integer cents as dollars: 41200 -> "$412.00"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def format_local_time(moment: datetime | None, zone: ZoneInfo, language: str) -> str | None:
    """A promised time as a customer reads it, in the rooftop's zone (None stays None)."""
    if moment is None:
        return None
    local = moment.astimezone(zone)
    if language == "en":
        hour = local.strftime("%I").lstrip("0")
        return f"{hour}:{local:%M} {local:%p} {local:%a %b} {local.day}"
    return f"{local:%d/%m %H:%M}"
