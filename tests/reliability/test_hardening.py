"""Defects found by probing a running server (issue 27), over real HTTP: numbers no column
holds, bodies too large to read, headers every page needs, 422s that echo what was sent,
and who may say which address a request came from."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.deps import Database
from app.main import create_app
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.app.web.conftest import World, logged_in
from tests.reliability.conftest import table_fingerprint
from tests.support import ServedApp

TOYOTA_SMS = "+14155550100"


@pytest.fixture
def app_served(settings: Settings, database: Database) -> Iterator[ServedApp]:
    with ServedApp(create_app(settings, database=database)) as served:
        yield served


def signed_post(
    client: httpx.Client, settings: Settings, path: str, form: dict[str, str]
) -> httpx.Response:
    signature = compute_signature(settings.twilio_auth_token, settings.public_url + path, form)
    return client.post(path, data=form, headers={SIGNATURE_HEADER: signature})


def test_a_number_too_large_for_the_database_is_a_4xx_never_a_500(
    world: World, settings: Settings, app_served: ServedApp
) -> None:
    """SQLite refused an integer beyond 64 bits with OverflowError, a 500; the duration is now
    read only when it could be a call's (app.main still answers any OverflowError 422)."""
    call = {"CallSid": "CA" + "9" * 32, "From": "+14155550142", "To": TOYOTA_SMS}
    with httpx.Client(base_url=app_served.url, timeout=10) as client:
        answered = signed_post(
            client, settings, "/webhooks/twilio/voice", {**call, "CallStatus": "ringing"}
        )
        assert answered.status_code == 200
        ended = signed_post(
            client,
            settings,
            "/webhooks/twilio/voice/dial-status",
            {**call, "DialCallStatus": "completed", "DialCallDuration": str(2**70)},
        )
    assert ended.status_code == 200, ended.text


def _raw_post(served: ServedApp, path: str, declared: int, sent: int) -> bytes:
    """POST declaring `declared` bytes, send only `sent` of them, and read the answer."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
            + b"x" * sent
        )
        return sock.recv(4096)


def test_an_oversized_body_is_refused_before_it_is_read_or_its_signature_checked(
    world: World, settings: Settings, database: Database, app_served: ServedApp, engine: Engine
) -> None:
    before = table_fingerprint(engine)
    # 60 MB declared, 64 KB sent: the answer comes without waiting for the rest.
    for path in ("/webhooks/twilio/messages", "/api/v1/inbox/1/reply", "/login"):
        answer = _raw_post(app_served, path, declared=60_000_000, sent=65_536)
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
        assert b"over the limit" in answer
    form = {"MessageSid": "SM" + "f" * 32, "From": "+14155550142", "To": TOYOTA_SMS}
    with httpx.Client(base_url=app_served.url, timeout=10) as client:
        # Webhooks have the smaller cap: 300 KB signed is too much, 200 KB unsigned is a 403.
        big = signed_post(
            client, settings, "/webhooks/twilio/messages", {**form, "Body": "x" * 300_000}
        )
        assert big.status_code == 413 and "webhook" in big.text
        small = client.post("/webhooks/twilio/messages", data={**form, "Body": "x" * 200_000})
        assert small.status_code == 403
        api = client.post(
            f"/api/v1/inbox/{world.task['bayview-toyota']}/reply",
            json={"body": "x" * 2_000_000},
            headers={"Authorization": f"Bearer {world.admin_token}"},
        )
        assert api.status_code == 413
    # A body without Content-Length (chunked) is counted as it is read and cut at the cap.
    app = create_app(settings, database=database)
    with TestClient(app) as client:
        chunks = (b"x" * 65_536 for _ in range(8))
        chunked = client.post(
            "/webhooks/twilio/status",
            content=chunks,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert chunked.status_code == 413
    assert table_fingerprint(engine) == before


def test_pages_forbid_framing_and_inline_script_and_are_never_cached(
    world: World, app_served: ServedApp
) -> None:
    login = httpx.get(app_served.url + "/login", timeout=10)
    policy = login.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["x-content-type-options"] == "nosniff"
    # FastAPI's API description (Swagger UI from a CDN) still works, and is not framed.
    docs = httpx.get(app_served.url + "/docs", timeout=10).headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs and "script-src" not in docs
    with logged_in(app_served, "admin@bayview.example") as client:
        for page in ("/board", "/inbox", "/admin", "/reports", "/reports/missed-calls.csv"):
            response = client.get(page)
            assert response.status_code == 200, page
            assert response.headers["cache-control"] == "no-store", page
            assert response.headers["x-frame-options"] == "DENY", page
            assert "onchange=" not in response.text and "<script>" not in response.text, page
        # The vendored htmx and the stylesheet keep their own (public) caching.
        static = client.get("/static/pitwall.css")
        assert static.headers["cache-control"].startswith("public")


def test_a_422_says_what_is_wrong_without_echoing_the_whole_input(
    world: World, app_served: ServedApp
) -> None:
    response = httpx.post(
        f"{app_served.url}/api/v1/inbox/{world.task['bayview-toyota']}/reply",
        json={"body": "x" * 500_000},
        headers={"Authorization": f"Bearer {world.admin_token}"},
        timeout=10,
    )
    assert response.status_code == 422
    assert len(response.content) < 2_000
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "body"] and "1600" in problem["msg"]
    assert problem["input"].startswith("xxx") and "500,000 characters" in problem["input"]


def _metrics_answer(app_url: str) -> int:
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    return httpx.get(app_url + "/metrics", headers=headers, timeout=10).status_code


def test_x_forwarded_for_is_believed_only_from_the_configured_proxies(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loopback used to be believed by default: a local client could claim any address."""
    monkeypatch.delenv("PITWALL_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    # Not configured: the header is ignored, the client is who it is (loopback: metrics).
    with ServedApp(create_app(settings, database=database)) as served:
        assert _metrics_answer(served.url) == 200
    # Configured for the local proxy: the address it forwards is the client (not loopback).
    behind_proxy = settings.model_copy(update={"forwarded_allow_ips": "127.0.0.1"})
    with ServedApp(create_app(behind_proxy, database=database)) as served:
        assert _metrics_answer(served.url) == 403
    assert Settings(FORWARDED_ALLOW_IPS="10.0.0.2").forwarded_allow_ips == "10.0.0.2"
