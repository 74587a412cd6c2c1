"""The port's error classification: what each Twilio code means for Pitwall."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.twilio.base import (
    ErrorKind,
    SendError,
    callback_error_marks_phone,
    classify_error_code,
)
from integrations.twilio.gateway import parse_retry_after


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (21211, 400, ErrorKind.INVALID_NUMBER),
        (21614, 400, ErrorKind.NOT_TEXTABLE),
        (21635, 400, ErrorKind.NOT_TEXTABLE),
        (30005, None, ErrorKind.NOT_TEXTABLE),
        (30006, None, ErrorKind.NOT_TEXTABLE),
        (21610, 400, ErrorKind.UNSUBSCRIBED),
        (21408, 400, ErrorKind.ROUTE_DISABLED),
        (21612, 400, ErrorKind.ROUTE_DISABLED),
        (20003, 401, ErrorKind.AUTH),
        (None, 401, ErrorKind.AUTH),
        (20429, 429, ErrorKind.RATE_LIMITED),
        (None, 429, ErrorKind.RATE_LIMITED),
        (21611, 400, ErrorKind.RATE_LIMITED),
        (63016, 400, ErrorKind.OUTSIDE_WINDOW),
        (None, 500, ErrorKind.AMBIGUOUS),
        (20500, 503, ErrorKind.AMBIGUOUS),
        (None, None, ErrorKind.AMBIGUOUS),
        (21602, 400, ErrorKind.PERMANENT),
        (None, 404, ErrorKind.PERMANENT),
    ],
)
def test_classify_error_code(code: int | None, status: int | None, kind: ErrorKind) -> None:
    assert classify_error_code(code, status) is kind


@pytest.mark.parametrize(
    ("code", "marks"),
    [
        (30003, False),  # handset off or out of coverage: temporary
        ("30005", True),
        (30006, True),
        (30007, False),
        (30001, False),
        (None, False),
        ("", False),
        ("nope", False),
    ],
)
def test_callback_codes_that_mark_the_phone(code: int | str | None, marks: bool) -> None:
    assert callback_error_marks_phone(code) is marks


def test_send_error_properties() -> None:
    stop = SendError.from_code("stop", code=21610, http_status=400)
    assert stop.permanent and not stop.ambiguous and stop.kind is ErrorKind.UNSUBSCRIBED
    lost = SendError("timeout", kind=ErrorKind.AMBIGUOUS)
    assert lost.ambiguous and not lost.permanent
    slow = SendError.from_code("slow", code=20429, http_status=429, retry_after=2.5)
    assert not slow.permanent and slow.retry_after == 2.5
    assert SendError("x", kind=ErrorKind.TRANSIENT).permanent is False
    assert str(stop) == "stop"


def test_parse_retry_after() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Sun, 22 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
