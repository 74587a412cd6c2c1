"""The messaging port Pitwall depends on.

The app speaks only these types; the Twilio adapter (``gateway.py``) and any test
double implement :class:`MessageGateway`. Nothing here imports ``twilio``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "CLOCK_SKEW_MARGIN_SECONDS",
    "ErrorKind",
    "MessageGateway",
    "OutgoingMessage",
    "SendError",
    "SentMessage",
    "callback_error_marks_phone",
    "classify_error_code",
]

# Twilio's clock and ours may disagree; reconciliation looks this far before the attempt.
CLOCK_SKEW_MARGIN_SECONDS = 120


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to hand to the provider.

    ``to`` is E.164 (``+14155550142``) or ``whatsapp:+14155550142``. Exactly one of
    ``from_``/``messaging_service_sid`` and at least one of ``body``/``content_sid``
    should be set; the provider rejects anything else.
    """

    to: str
    from_: str | None = None
    messaging_service_sid: str | None = None
    body: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    status_callback: str | None = None
    validity_period: int | None = None


@dataclass(frozen=True)
class SentMessage:
    """What the provider says about a message it holds."""

    sid: str
    status: str
    num_segments: int | None = None
    date_created: datetime | None = None


class ErrorKind(enum.StrEnum):
    """What a failed send means for the caller, independent of the vendor's codes."""

    INVALID_NUMBER = "invalid_number"
    NOT_TEXTABLE = "not_textable"
    UNSUBSCRIBED = "unsubscribed"
    ROUTE_DISABLED = "route_disabled"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    OUTSIDE_WINDOW = "outside_window"
    # The request may have reached Twilio: reconcile before sending again.
    AMBIGUOUS = "ambiguous"
    # Known not to have created a message: safe to retry as is.
    TRANSIENT = "transient"
    PERMANENT = "permanent"


_CODE_KINDS: dict[int, ErrorKind] = {
    21211: ErrorKind.INVALID_NUMBER,
    21614: ErrorKind.NOT_TEXTABLE,
    21635: ErrorKind.NOT_TEXTABLE,
    30003: ErrorKind.TRANSIENT,
    30005: ErrorKind.NOT_TEXTABLE,
    30006: ErrorKind.NOT_TEXTABLE,
    21610: ErrorKind.UNSUBSCRIBED,
    21408: ErrorKind.ROUTE_DISABLED,
    21612: ErrorKind.ROUTE_DISABLED,
    20003: ErrorKind.AUTH,
    20429: ErrorKind.RATE_LIMITED,
    21611: ErrorKind.RATE_LIMITED,
    63016: ErrorKind.OUTSIDE_WINDOW,
}

# Kinds after which sending the same message again can never succeed.
_PERMANENT_KINDS = frozenset(
    {
        ErrorKind.INVALID_NUMBER,
        ErrorKind.NOT_TEXTABLE,
        ErrorKind.UNSUBSCRIBED,
        ErrorKind.ROUTE_DISABLED,
        ErrorKind.AUTH,
        ErrorKind.OUTSIDE_WINDOW,
        ErrorKind.PERMANENT,
    }
)

# Delivery-callback codes that say the number itself cannot take texts. Not 30003: a
# handset that is off or out of coverage takes texts again later (Twilio: retry).
_PHONE_MARKING_CALLBACK_CODES = frozenset({30005, 30006})


def classify_error_code(code: int | None, http_status: int | None) -> ErrorKind:
    """Map a Twilio error code and/or HTTP status to an :class:`ErrorKind`.

    The specific Twilio code wins over the HTTP status; with neither known the
    outcome is ambiguous (the request may have been accepted).
    """
    if code is not None and code in _CODE_KINDS:
        return _CODE_KINDS[code]
    if http_status is None:
        return ErrorKind.AMBIGUOUS
    if http_status == 401:
        return ErrorKind.AUTH
    if http_status == 429:
        return ErrorKind.RATE_LIMITED
    if http_status >= 500:
        return ErrorKind.AMBIGUOUS
    if http_status >= 400:
        return ErrorKind.PERMANENT
    return ErrorKind.AMBIGUOUS


def callback_error_marks_phone(code: int | str | None) -> bool:
    """True when a status-callback ``ErrorCode`` says the phone is unreachable or a landline.

    30005 (unknown/inactive number) and 30006 (landline or unreachable carrier) mark the
    phone; 30003 (handset off or out of coverage) is temporary, and other 300xx codes
    belong to one message.
    """
    if code is None or code == "":
        return False
    try:
        return int(code) in _PHONE_MARKING_CALLBACK_CODES
    except (TypeError, ValueError):
        return False


class SendError(Exception):
    """A send (or lookup) the provider did not complete.

    ``kind`` tells the caller what to do; ``code`` and ``http_status`` keep the
    vendor's detail for the record; ``retry_after`` is the server's hint in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        code: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    @classmethod
    def from_code(
        cls,
        message: str,
        *,
        code: int | None,
        http_status: int | None,
        retry_after: float | None = None,
    ) -> SendError:
        """Build an error whose kind is derived with :func:`classify_error_code`."""
        return cls(
            message,
            kind=classify_error_code(code, http_status),
            code=code,
            http_status=http_status,
            retry_after=retry_after,
        )

    @property
    def permanent(self) -> bool:
        """Sending the same message again will fail the same way."""
        return self.kind in _PERMANENT_KINDS

    @property
    def ambiguous(self) -> bool:
        """The message may exist at the provider: reconcile before resending."""
        return self.kind is ErrorKind.AMBIGUOUS

    def __repr__(self) -> str:
        return (
            f"SendError({self.message!r}, kind={self.kind.value}, code={self.code}, "
            f"http_status={self.http_status}, retry_after={self.retry_after})"
        )


@runtime_checkable
class MessageGateway(Protocol):
    """Port to an SMS/WhatsApp provider. Implementations must be thread-safe."""

    def send(self, msg: OutgoingMessage) -> SentMessage:
        """Create the message at the provider; raise :class:`SendError` on failure."""
        ...

    def find_existing(
        self,
        *,
        to: str,
        from_: str | None,
        messaging_service_sid: str | None,
        body: str | None,
        content_sid: str | None,
        created_after: datetime,
    ) -> SentMessage | None:
        """Find a message an earlier, ambiguous attempt may have created.

        Matches on body (or content SID when there is no body) among messages to
        ``to`` (and from ``from_`` when known) created at or after ``created_after``
        minus :data:`CLOCK_SKEW_MARGIN_SECONDS`. Returns the newest match or None.
        """
        ...

    def fetch(self, sid: str) -> SentMessage:
        """Fetch one message by SID; raise :class:`SendError` when it cannot."""
        ...

    def check_credentials(self) -> str:
        """Return the account's friendly name; raise :class:`SendError` (AUTH) if rejected."""
        ...
