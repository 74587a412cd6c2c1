"""Structured logs: JSON lines with the unit of work's ids, phones masked, secrets gone."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.ops.logging import configure_logging, log_unit_of_work, mask_phone_numbers, redact

AUTH_TOKEN = "f3a9c1d2e4b5a6978877665544332211"


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = configure_logging(json=True, secrets=[AUTH_TOKEN], stream=stream)
    yield stream, handler
    logging.getLogger().removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_phone_numbers_are_masked() -> None:
    assert mask_phone_numbers("to +14155550142 now") == "to +1415555**** now"
    assert mask_phone_numbers("whatsapp:+14155550142") == "whatsapp:+1415555****"
    assert mask_phone_numbers("called (415) 555-0142") == "called (415) 555-****"
    assert mask_phone_numbers("RO R1001 at 2026-11-22T15:02:00Z") == (
        "RO R1001 at 2026-11-22T15:02:00Z"
    )
    assert mask_phone_numbers("from 14155550142") == "from 1415555****"
    assert mask_phone_numbers("From=4155550142&To=x") == "From=415555****&To=x"
    assert mask_phone_numbers("to +44 20 7946 0958.") == "to +44 20 7946 ****."
    assert mask_phone_numbers("+1 (415) 555-0142") == "+1 (415) 555-****"


def test_ordinary_numbers_are_not_taken_for_phones() -> None:
    for text in (
        "RO 7004211 and R1001, line 12",
        "41200 cents, $4155550142, 4155550142.50, 2100000000 cents",
        "at 1764000000 (1764000000123 ms) 2026-11-22T15:02:00+00:00, 20261122150200",
        "sid SM4155550142aa, id_4155550142, took 12.5 ms, +3 days",
    ):
        assert mask_phone_numbers(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnop123", "abcdefghijklmnop123"),
        ("headers={'Authorization': 'Basic QUM6c2VjcmV0'}", "QUM6c2VjcmV0"),
        ("login password=hunter2-longer failed", "hunter2-longer"),
        ('{"client_secret": "cdk-secret-value"}', "cdk-secret-value"),
        ("GET /repair-orders?token=bridge-token-9&x=1", "bridge-token-9"),
        ("postgresql+psycopg://pitwall:s3cr3t-pw@db:5432/pitwall", "s3cr3t-pw"),
        (f"twilio said no to {AUTH_TOKEN}", AUTH_TOKEN),
    ],
)
def test_secrets_are_redacted(
    captured: tuple[io.StringIO, logging.Handler], text: str, secret: str
) -> None:
    assert secret not in redact(text)
    stream, _ = captured
    logging.getLogger("pitwall.test").warning("%s", text)
    assert secret not in stream.getvalue()
    assert "***" in stream.getvalue()


def test_one_json_line_per_unit_of_work_with_its_ids(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, _ = captured
    log = logging.getLogger("app.messaging")
    with log_unit_of_work("send", rooftop="bayview-toyota", ro="R1001", message=42):
        log.info("sending to %s", "+14155550142")
    found = lines(stream)
    assert [entry["msg"] for entry in found] == ["sending to +1415555****", "send ok"]
    for entry in found:
        assert entry["rooftop"] == "bayview-toyota"
        assert entry["ro"] == "R1001"
        assert entry["message_id"] == 42
        assert entry["unit"] == "send"
    assert found[1]["outcome"] == "ok" and isinstance(found[1]["duration_ms"], float)
    assert {"ts", "level", "logger"} <= set(found[0])


def test_a_failed_unit_logs_its_error_without_secrets(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, _ = captured
    with (
        pytest.raises(RuntimeError),
        log_unit_of_work("dms poll", rooftop="bayview-ford"),
    ):
        try:
            raise ValueError(f"bad token {AUTH_TOKEN} for +14155550200")
        except ValueError:
            logging.getLogger("app.repair_orders").exception("poll failed")
            raise RuntimeError("poll failed for password=topsecret99") from None
    text = stream.getvalue()
    assert AUTH_TOKEN not in text and "topsecret99" not in text and "+14155550200" not in text
    last = lines(stream)[-1]
    assert last["msg"].startswith("dms poll failed") and last["outcome"] == "error"
    assert "exc" in lines(stream)[0]


def test_readable_format_for_the_demo() -> None:
    stream = io.StringIO()
    handler = configure_logging(json=False, stream=stream)
    try:
        with log_unit_of_work("webhook", rooftop="bayview-toyota"):
            logging.getLogger("app.conversations").info("reply from +14155550142")
    finally:
        logging.getLogger().removeHandler(handler)
    first = stream.getvalue().splitlines()[0]
    assert "INFO" in first and "reply from +1415555****" in first
    assert "rooftop=bayview-toyota" in first
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
