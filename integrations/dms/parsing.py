"""Field parsers shared by the adapters.

Each raises ``MalformedRecord`` with a reason that starts with the field name,
so a quarantined record tells the operator exactly what to fix in the DMS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from integrations.dms.base import DmsPhone, LineStatus, MalformedRecord

# Thousands separators only in proper groups, so "12,34.5" is refused rather than guessed.
_MONEY = re.compile(r"^(-)?\$?((?:\d{1,3}(?:,\d{3})+)|\d+)(\.\d+)?$")
_VIN_CHARS = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
_LANGUAGE_NAMES = {
    "english": "en",
    "spanish": "es",
    "espanol": "es",
    "español": "es",
    "french": "fr",
    "francais": "fr",
    "français": "fr",
}
_PHONE_KINDS = {
    "mobile": "mobile",
    "cell": "mobile",
    "cellular": "mobile",
    "cellphone": "mobile",
    "m": "mobile",
    "c": "mobile",
    "home": "home",
    "h": "home",
    "work": "work",
    "business": "work",
    "office": "work",
    "w": "work",
    "b": "work",
}
_TRUE = {"true", "y", "yes", "1", "opted_in", "optin", "granted"}
_FALSE = {"false", "n", "no", "0", "opted_out", "optout", "revoked"}


def text(value: Any, field: str) -> str | None:
    """A trimmed string, or None for null/blank; numbers are accepted as their text."""
    if type(value) is str:  # the common case first: a poll parses a dozen per record
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedRecord(f"{field}: expected text, got {value!r}")
    cleaned = str(value).strip()
    return cleaned or None


def required_text(value: Any, field: str) -> str:
    """Like :func:`text` but the field must be present."""
    cleaned = value.strip() if type(value) is str else text(value, field)  # as `text` does
    if not cleaned:  # None, or blank
        raise MalformedRecord(f"{field}: missing")
    return cleaned


def cents(value: Any, field: str) -> int:
    """Parse money to integer cents with Decimal: "89.95" -> 8995, "1,234.50" -> 123450.

    Floats are accepted only because JSON numbers arrive as floats; their
    shortest repr ("89.95") is what the vendor wrote, so no binary error leaks in.
    """
    if isinstance(value, bool) or value is None:
        raise MalformedRecord(f"{field}: not an amount: {value!r}")
    if isinstance(value, int):
        return value * 100
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str):
        raise MalformedRecord(f"{field}: not an amount: {value!r}")
    parsed = _cents_of_text(value)
    if isinstance(parsed, str):
        raise MalformedRecord(f"{field}: {parsed}: {value!r}")
    return parsed


@lru_cache(maxsize=4096)
def _cents_of_text(value: str) -> int | str:
    """Cents for an amount's text, or why it is not one. Cached: a shop's prices recur
    on every poll, and Decimal arithmetic is most of what parsing a job line costs."""
    match = _MONEY.match(value.strip())
    if match is None:
        return "not an amount"
    sign, whole, fraction = match.groups()
    try:
        amount = Decimal(whole.replace(",", "") + (fraction or ""))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        return "not an amount"
    scaled = amount * 100
    if scaled != scaled.to_integral_value():
        return "more than two decimal places"
    return int(scaled) * (-1 if sign else 1)


def integer_cents(value: Any, field: str) -> int:
    """An amount the vendor already sends as integer cents (Tekion)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecord(f"{field}: expected integer cents, got {value!r}")
    return value


def iso_time(value: Any, field: str, *, local: tzinfo | None = None) -> datetime | None:
    """Parse ISO 8601 to aware UTC; None for null/blank.

    A time without an offset is read in ``local`` (the rooftop's zone) when
    given, otherwise it is refused: guessing a zone would shift promise times.
    """
    raw = text(value, field)
    if raw is None:
        return None
    if local is None:
        parsed = _utc_of_iso(raw)
        if isinstance(parsed, str):
            raise MalformedRecord(f"{field}: {parsed}: {raw!r}")
        return parsed
    try:
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError as exc:
        raise MalformedRecord(f"{field}: not an ISO 8601 time: {raw!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local)
    return moment.astimezone(UTC)


@lru_cache(maxsize=8192)
def _utc_of_iso(raw: str) -> datetime | str:
    """Aware UTC for an ISO 8601 time with an offset, or why it is not one. Cached: opened
    and promised times repeat on every poll of an open RO (datetimes are immutable)."""
    try:
        parsed = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        return "not an ISO 8601 time"
    if parsed.tzinfo is None:
        return "ISO 8601 time without a UTC offset"
    return parsed.astimezone(UTC)


def local_time(raw: str, fmt: str, field: str, zone: tzinfo) -> datetime:
    """Parse a zone-less vendor timestamp written in the rooftop's local time, to UTC.

    ``fold=0`` picks the first of two repeated wall-clock times at the end of
    DST, the same choice the DMS's own screen makes.
    """
    try:
        naive = datetime.strptime(raw, fmt)
    except ValueError as exc:
        raise MalformedRecord(f"{field}: not a {fmt} time: {raw!r}") from exc
    return naive.replace(tzinfo=zone).astimezone(UTC)


def epoch_ms(value: Any, field: str) -> datetime | None:
    """Epoch milliseconds (Tekion) to aware UTC; None for null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRecord(f"{field}: expected epoch milliseconds, got {value!r}")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedRecord(f"{field}: epoch milliseconds out of range: {value!r}") from exc


def integer(value: Any, field: str, *, low: int = 0, high: int = 10_000_000) -> int | None:
    """A whole number within [low, high]; "41,230" is accepted; None for null/blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise MalformedRecord(f"{field}: not a whole number: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\d{1,3}(,\d{3})+|\d+", value.strip()):
        number = int(value.strip().replace(",", ""))
    else:
        raise MalformedRecord(f"{field}: not a whole number: {value!r}")
    if not low <= number <= high:
        raise MalformedRecord(f"{field}: {number} is outside {low}..{high}")
    return number


def vin(value: Any) -> str | None:
    """Upper-case VIN when it is 17 legal characters, else None.

    The check digit is not enforced: it is mandatory only for North American
    VINs, and a wrong VIN must not stop the RO's status texts.
    """
    if not isinstance(value, str):
        return None
    cleaned = value.strip().upper()
    return cleaned if _VIN_CHARS.match(cleaned) else None


def language(value: Any) -> str | None:
    """'en', 'EN', 'en-US', 'es_MX', 'Spanish' -> two lowercase letters; unknown -> None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _language_code(value)


@lru_cache(maxsize=256)
def _language_code(value: str) -> str | None:
    # Cached: a handful of spellings recur on every record of a poll.
    cleaned = value.strip().lower()
    if cleaned in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[cleaned]
    code = re.split(r"[-_]", cleaned, maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2}", code) else None


def phone_kind(value: Any) -> str | None:
    """Map a vendor's phone type ('Cell', 'MOBILE', 'Business', 'H') to mobile/home/work."""
    if not isinstance(value, str):
        return None
    kind = _PHONE_KINDS.get(value)  # already canonical, as most DMSes send it
    return kind if kind is not None else _PHONE_KINDS.get(value.strip().lower().replace(" ", ""))


def phone(number: Any, kind: Any, field: str) -> DmsPhone | None:
    """A DmsPhone kept as typed, or None when the number is blank."""
    cleaned = text(number, field)
    if cleaned is None:
        return None
    return DmsPhone(number=cleaned, kind=phone_kind(kind))


def consent(value: Any, field: str) -> bool | None:
    """True / False / None (absent: the rooftop's policy decides)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        cleaned = value.strip().lower()
        if not cleaned:
            return None
        if cleaned in _TRUE:
            return True
        if cleaned in _FALSE:
            return False
    raise MalformedRecord(f"{field}: expected true/false, got {value!r}")


def mapping(value: Any, field: str) -> dict[str, Any] | None:
    """A JSON object or None; anything else is malformed."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedRecord(f"{field}: expected an object, got {type(value).__name__}")
    return value


def sequence(value: Any, field: str) -> list[Any]:
    """A JSON array (None reads as empty); anything else is malformed."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedRecord(f"{field}: expected a list, got {type(value).__name__}")
    return value


def utc_z(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 UTC with a Z, as the bridge contract wants."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y")
_TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%H%M")


def local_date_time(day: Any, clock_time: Any, field: str, zone: tzinfo) -> datetime | None:
    """A date and a wall-clock time the DMS wrote separately, in the rooftop's zone, to UTC.

    Vendors whose date format is not published (Fortellis) are read tolerantly:
    ``2026-11-22``, ``20261122`` or ``11/22/2026``; ``16:30``, ``16:30:00``, ``1630`` or
    ``930`` (09:30). A full ISO 8601 time in the date field is taken as it is when no
    separate time is given, else only its date is. None when either part is blank: a
    date alone is no promise time, and inventing one would send false delay texts.
    """
    day_text = text(day, field)
    if day_text is None:
        return None
    time_text = text(clock_time, field)
    if "T" in day_text:
        if time_text is None:
            return iso_time(day_text, field, local=zone)
        day_text = day_text.split("T", 1)[0]  # a date written as a midnight timestamp
    if time_text is None:
        return None
    if time_text.isdigit() and len(time_text) < 4:
        time_text = time_text.zfill(4)  # "639" is 06:39 (OpenTrack TimeIn)
    for date_format in _DATE_FORMATS:
        for time_format in _TIME_FORMATS:
            try:
                naive = datetime.strptime(f"{day_text} {time_text}", f"{date_format} {time_format}")
            except ValueError:
                continue
            return naive.replace(tzinfo=zone).astimezone(UTC)
    raise MalformedRecord(f"{field}: not a date and time: {day_text!r} {time_text!r}")


def local_date(day: Any, field: str, zone: tzinfo) -> datetime | None:
    """A date with no time (a close date), as the start of that day in the rooftop's zone."""
    day_text = text(day, field)
    if day_text is None or day_text == "0":
        return None
    if "T" in day_text:
        return iso_time(day_text, field, local=zone)
    for date_format in _DATE_FORMATS:
        try:
            naive = datetime.strptime(day_text, date_format)
        except ValueError:
            continue
        return naive.replace(tzinfo=zone).astimezone(UTC)
    raise MalformedRecord(f"{field}: not a date: {day_text!r}")


def line_status(code: Any, mapping: Mapping[str, LineStatus], field: str) -> LineStatus:
    """A vendor's line status code through the rooftop's ``line_status_map``.

    No vendor source says what its line codes mean for approval, so the map is the
    dealer's. A code it does not name (blank included) reads as ``approved``: a line
    on the repair order is work the customer agreed to unless the map says otherwise.
    Reading it as ``pending`` instead would make every line of a closed RO declined
    (pending at close counts as declined) and send follow-ups about work that was done.
    """
    cleaned = (text(code, field) or "").upper()
    return mapping.get(cleaned, "approved")
