"""Structured logs: JSON lines in production, readable lines in the demo, never a secret.

`configure_logging(json=...)` installs one handler on the root logger with two
filters that see every record, whichever library logged it:

- `UnitOfWorkFilter` stamps the record with the ids of the unit of work running
  in this context (rooftop, RO, message), set by `log_unit_of_work`;
- `RedactingFilter` masks phone numbers (+14155550142 -> +1415555****, 4155550142 ->
  415555****, +44 20 7946 0958 -> +44 20 7946 ****) and removes
  secrets (the Twilio auth token, DMS tokens and passwords, Authorization headers,
  the password in a database URL) from the message, the traceback and the fields.

A unit of work (a poll, a send, a webhook) logs one line when it ends, with its
ids, outcome and duration.
"""

from __future__ import annotations

import json as jsonlib
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "JsonFormatter",
    "ReadableFormatter",
    "RedactingFilter",
    "UnitOfWorkFilter",
    "bind",
    "configure_logging",
    "current_unit",
    "log_unit_of_work",
    "mask_phone_numbers",
    "redact",
]

_unit: ContextVar[dict[str, Any] | None] = ContextVar("pitwall_unit_of_work", default=None)

# --- masking and redaction ------------------------------------------------------

# With a country code (after "whatsapp:" too): +14155550142, +44 20 7946 0958,
# +1 (415) 555-0142. Keep the country and area code, hide the last four digits.
_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){1,6}(?!\d)")
_LAST_FOUR_DIGITS = re.compile(r"\d(?=(?:\D*\d){0,3}\D*$)")
# North American numbers as people type them: (415) 555-0142, 415-555-0142, 415.555.0142.
_NANP = re.compile(r"(?<![\w+])(\(?\d{3}\)?[ .-]?\d{3}[ .-])(\d{4})(?!\d)")
# ...and as bare digits: 4155550142, 14155550142. An area code and an exchange never
# start with 0 or 1, so Unix times (17...), amounts and RO numbers are left alone.
_NANP_DIGITS = re.compile(r"(?<![\w+.$])(1?[2-9]\d{2}[2-9]\d{2})(\d{4})(?!\w|[.,]\d)")
_SECRET_VALUE = r"[^\s&,;\"'}]+"
_SECRET_PATTERNS = (
    # Authorization: Bearer abc / Basic abc (headers, reprs of header dicts)
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:bearer|basic|token)\s+)[^\s'\",}]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # password=..., "auth_token": "...", client_secret: ..., token=... (query strings too)
    re.compile(
        r"(?i)(\b(?:password|passwd|pwd|secret|client_secret|auth_token|authtoken|api_key|"
        r"apikey|access_token|refresh_token|token|secret_key)['\"]?\s*[:=]\s*['\"]?)"
        + _SECRET_VALUE
    ),
    # scheme://user:password@host
    re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"),
    # The customer page's private link (/c/<token>): an access log line would hand it out.
    re.compile(r"(/c/)[A-Za-z0-9_-]{16,64}"),
)
_MASK = "***"

_known_secrets: set[str] = set()


def mask_phone_numbers(text: str) -> str:
    """Hide the last four digits of every phone number in `text`."""
    text = _INTERNATIONAL.sub(_mask_international, text)
    text = _NANP.sub(lambda m: m.group(1) + "****", text)
    return _NANP_DIGITS.sub(lambda m: m.group(1) + "****", text)


def _mask_international(match: re.Match[str]) -> str:
    number = match.group(0)
    if not 7 <= sum(c.isdigit() for c in number) <= 15:  # E.164 has at most 15 digits
        return number
    return _LAST_FOUR_DIGITS.sub("*", number)


def redact(text: str) -> str:
    """`text` with secrets removed and phone numbers masked."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2:
            text = pattern.sub(lambda m: m.group(1) + _MASK + m.group(2), text)
        else:
            text = pattern.sub(lambda m: m.group(1) + _MASK, text)
    return mask_phone_numbers(text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _MASK if _secret_key(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def _secret_key(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in ("password", "secret", "token", "authorization"))


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember literal secret values (tokens, passwords) so no log line ever shows them."""
    for value in values:
        # Very short values would mask ordinary words; real secrets are longer.
        if value and len(value) >= 6:
            _known_secrets.add(value)


class RedactingFilter(logging.Filter):
    """Rewrites each record so its message, traceback and extra fields carry no secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name in _STANDARD_ATTRS:
                continue
            setattr(record, name, _MASK if _secret_key(name) else _redact_value(value))
        return True


# --- unit of work context -------------------------------------------------------


def current_unit() -> dict[str, Any]:
    """The ids of the unit of work running in this context (a copy)."""
    return dict(_unit.get() or {})


def bind(**fields: Any) -> None:
    """Add ids learned mid-way (the RO found by a webhook, the message claimed)."""
    if "message" in fields:
        fields["message_id"] = fields.pop("message")
    current = _unit.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


@contextmanager
def log_unit_of_work(
    name: str,
    *,
    rooftop: str | int | None = None,
    ro: str | int | None = None,
    message: str | int | None = None,
    logger: logging.Logger | None = None,
    **fields: Any,
) -> Iterator[dict[str, Any]]:
    """Carry rooftop, RO and message ids on every record logged inside the block.

    When the block ends one line is logged: `<name> ok` (or `<name> failed` with the
    error) with the ids and the duration. Nested blocks inherit their parent's ids.
    """
    parent = _unit.get() or {}
    # `message` is a LogRecord attribute already (the formatted text): keep ids apart.
    ids = {"rooftop": rooftop, "ro": ro, "message_id": message, **fields}
    context = {**parent, "unit": name, **{k: v for k, v in ids.items() if v is not None}}
    token = _unit.set(context)
    log = logger or logging.getLogger("pitwall.unit")
    started = time.perf_counter()
    try:
        yield context
    except BaseException as exc:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        log.warning("%s failed: %s", name, exc, extra={"outcome": "error", "duration_ms": elapsed})
        raise
    else:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        log.info("%s ok", name, extra={"outcome": "ok", "duration_ms": elapsed})
    finally:
        _unit.reset(token)


class UnitOfWorkFilter(logging.Filter):
    """Stamps each record with the ids of the unit of work of its context."""

    def filter(self, record: logging.LogRecord) -> bool:
        unit = _unit.get()
        if unit:
            for key, value in unit.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


# --- formatters -----------------------------------------------------------------

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}
_CONTEXT_ORDER = ("unit", "rooftop", "ro", "message_id")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
    ordered = {k: extras.pop(k) for k in _CONTEXT_ORDER if k in extras}
    return {**ordered, **extras}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the unit's ids, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return jsonlib.dumps(entry, default=str, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    """`12:04:05 INFO app.messaging: sent  rooftop=bayview-toyota ro=R1001` for terminals."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        first, _, rest = line.partition("\n")
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{first}  {tail}" + (f"\n{rest}" if rest else "")


def configure_logging(
    json: bool,
    *,
    level: int | str = logging.INFO,
    secrets: Iterable[str | None] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record to one handler: JSON lines or readable, always redacted.

    `secrets` are literal values to remove wherever they appear (pass the Twilio
    auth token, the secret key, each rooftop's DMS token). Calling it again
    replaces the handler it installed before.
    """
    register_secrets(secrets)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_pitwall", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._pitwall = True  # type: ignore[attr-defined]
    handler.addFilter(UnitOfWorkFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json else ReadableFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn and APScheduler log through the root handler too (uvicorn: log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler"):
        logging.getLogger(name).propagate = True
    return handler
