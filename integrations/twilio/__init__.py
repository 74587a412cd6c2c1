"""Twilio integration: the messaging port (``base``) and its Twilio adapter.

The app imports only from this package's ``base`` (re-exported here), never from
``gateway``/``sandbox`` at module level, so ``twilio`` stays inside this folder.
"""

from integrations.twilio.base import (
    CLOCK_SKEW_MARGIN_SECONDS,
    ErrorKind,
    MessageGateway,
    OutgoingMessage,
    SendError,
    SentMessage,
    callback_error_marks_phone,
    classify_error_code,
)

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
