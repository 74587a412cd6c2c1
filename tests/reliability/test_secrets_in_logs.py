"""A full worker run, webhooks, a failed DMS login and a wrong password, logged at DEBUG
through the production handler: no secret appears, no phone number in full."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.dealers.models import Rooftop
from app.ops.logging import configure_logging
from app.repair_orders.poller import poll_rooftop
from app.wiring import change_hooks
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.rest import RestBridgeAdapter
from integrations.twilio.sandbox import SandboxServer
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.app.messaging.conftest import Shop
from tests.app.repair_orders.conftest import NOW, bridge_record
from tests.support import ServedApp

DMS_TOKEN = "bridge-token-s3cr3t-9f8e7d"
WRONG_DMS_TOKEN = "wrong-token-0a1b2c3d4e5f"
PASSWORD = "hunter2-Correct-Horse"
FULL_NUMBER = re.compile(r"\+1\d{10}(?!\d)")


@pytest.fixture
def captured(app_settings: Settings) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging(
        json=True,
        level=logging.DEBUG,
        secrets=[app_settings.twilio_auth_token, app_settings.secret_key, DMS_TOKEN],
        stream=stream,
    )
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def test_no_secret_and_no_full_number_in_any_log_line(
    captured: io.StringIO,
    shop: Shop,
    sandbox: SandboxServer,
    served_app: ServedApp,
    dispatch: Callable[..., Any],
    app_settings: Settings,
) -> None:
    fake = RestBridgeFake(page_size=2)
    fake.put(*(bridge_record(f"L{i}", updated_at=f"2026-11-22T17:4{i}:00Z") for i in range(3)))
    with shop.database.sessions() as session:
        toyota = session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-toyota")).one()
    with FakeServer(fake.app) as server:
        for token in (DMS_TOKEN, WRONG_DMS_TOKEN):
            adapter = RestBridgeAdapter(
                base_url=server.url, token=token, rooftop_slug="bayview-toyota"
            )
            poll_rooftop(
                shop.database,
                rooftop_id=toyota.id,
                adapter_factory=lambda _r, a=adapter: a,
                hooks=change_hooks(),
                clock=lambda: NOW,
                worker_id="w",
            )
            adapter.close()
    sandbox.inject("500_after")
    sandbox.inject("error", code=20003, status=401)
    for _ in range(3):
        dispatch()
    form = {
        "MessageSid": "SM" + "e" * 32,
        "From": "+14155550142",
        "To": "+14155550100",
        "Body": "is it ready? call me at 415-555-0142",
    }
    url = app_settings.public_url + "/webhooks/twilio/messages"
    with httpx.Client(base_url=served_app.url) as client:
        client.post(
            "/webhooks/twilio/messages",
            data=form,
            headers={
                SIGNATURE_HEADER: compute_signature(app_settings.twilio_auth_token, url, form)
            },
        )
        client.post("/webhooks/twilio/messages", data=form, headers={SIGNATURE_HEADER: "forged"})
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        client.post(
            "/login",
            data={
                "email": "nobody@x.example",
                "password": PASSWORD,
                "csrf_token": token.group(1) if token else "",
            },
        )
    sandbox.wait_for_callbacks(10)
    # Control: a number logged on purpose comes out masked through the same handler.
    logging.getLogger("tests").warning("texting %s", "+14155550142")
    text = captured.getvalue()
    lines = text.splitlines()
    assert len(lines) > 10, text[:500]
    for secret in (app_settings.twilio_auth_token, DMS_TOKEN, PASSWORD, app_settings.secret_key):
        assert secret not in text
    assert WRONG_DMS_TOKEN not in text  # "token=" and Bearer values are cut even when unknown
    assert FULL_NUMBER.findall(text) == [], FULL_NUMBER.findall(text)[:5]
    assert "texting +1415555****" in text


def test_numbers_without_plus_or_with_spaces_are_masked_but_other_numbers_kept(
    captured: io.StringIO, shop: Shop, served_app: ServedApp, app_settings: Settings
) -> None:
    """Found by probing: 14155550142, 4155550142 and +44 20 7946 0958 were logged whole."""
    path = "/webhooks/twilio/messages"
    numbers = ("14155550142", "4155550142", "+44 20 7946 0958")
    with httpx.Client(base_url=served_app.url) as client:
        for n, number in enumerate(numbers):
            # To a number no rooftop has: Pitwall logs it ("no rooftop has this number").
            form = {"MessageSid": f"SM{n:032d}", "From": "+14155550142", "To": number, "Body": "hi"}
            signature = compute_signature(
                app_settings.twilio_auth_token, app_settings.public_url + path, form
            )
            answer = client.post(path, data=form, headers={SIGNATURE_HEADER: signature})
            assert answer.status_code == 200
    ordinary = "RO R1001 RO 7004211 for 41200 cents at 1764000000 (2026-11-22T15:02:00+00:00)"
    logging.getLogger("tests").warning("control: %s", ordinary)
    text = captured.getvalue()
    for number in numbers:
        assert number not in text, number
    for masked in ("to 1415555****", "to 415555****", "to +44 20 7946 ****"):
        assert masked in text, masked
    assert f"control: {ordinary}" in text  # RO numbers, amounts and times are not phones


def test_a_customer_page_link_in_an_access_log_line_is_masked(captured: io.StringIO) -> None:
    """Anyone holding a /c/ token can approve work and book: it never reaches a log."""
    token = "AbCdEfGhIjKlMnOpQrStUv"
    # uvicorn's access lines reach the same root handler (configure_logging); a logger of
    # our own keeps this test apart from what other tests' servers did to uvicorn's.
    logging.getLogger("pitwall.test.access").info(
        '%s - "%s %s HTTP/1.1" %d', "203.0.113.9:5123", "GET", f"/c/{token}/status.json", 200
    )
    text = captured.getvalue()
    assert "/c/***/status.json" in text and token not in text
