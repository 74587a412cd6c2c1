"""TwilioGateway against the sandbox over real HTTP: sends, lookups and every failure."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from twilio.rest import Client

from integrations.twilio.base import (
    ErrorKind,
    MessageGateway,
    OutgoingMessage,
    SendError,
    SentMessage,
)
from integrations.twilio.gateway import TwilioGateway, form_encode, prepare_request
from integrations.twilio.sandbox import SandboxServer

from .conftest import ACCOUNT_SID, AUTH_TOKEN, LANDLINE, ROOFTOP

CUSTOMER = "+14155550142"
SERVICE = "MG" + "1" * 32


def text(body: str = "Your RAV4 is ready for pickup.", to: str = CUSTOMER) -> OutgoingMessage:
    return OutgoingMessage(to=to, from_=ROOFTOP, body=body)


def send_error(gateway: TwilioGateway, msg: OutgoingMessage) -> SendError:
    with pytest.raises(SendError) as caught:
        gateway.send(msg)
    return caught.value


def stored_bodies(sandbox: SandboxServer) -> list[str]:
    return [m.body or "" for m in sandbox.state.list_messages()]


def test_gateway_implements_the_port(gateway: TwilioGateway) -> None:
    assert isinstance(gateway, MessageGateway)


def test_send_then_fetch(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    sent = gateway.send(text())
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert sent.status == "queued"
    assert sent.num_segments == 1
    assert sent.date_created is not None and sent.date_created.tzinfo is not None
    fetched = gateway.fetch(sent.sid)
    assert fetched.sid == sent.sid
    assert stored_bodies(sandbox) == ["Your RAV4 is ready for pickup."]


@pytest.mark.parametrize(
    "fields",
    [
        {"To": "+14155550142", "Body": "Hé & = ü ✓ + /? 100%", "StatusCallback": "http://x/?a=b"},
        {"MediaUrl": ["http://a/b?c=d", None, "x"], "To": "whatsapp:+14155550142"},
        {"PageSize": 50, "SmartEncoded": "true", "Skipped": None},
    ],
)
def test_form_body_is_what_requests_would_encode(fields: dict[str, object]) -> None:
    """The body is encoded once by the gateway; it must be byte for byte what requests sends."""
    import requests

    prepared = requests.Request("POST", "http://twilio.invalid/", data=fields).prepare()
    assert form_encode(fields) == str(prepared.body).encode()


@pytest.mark.parametrize(
    ("method", "uri", "params", "data"),
    [
        (
            "POST",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
            None,
            {
                "To": "+14155550142",
                "Body": "Hé & = ü ✓ + /? 100%",
                "StatusCallback": "http://x/?a=b",
            },
        ),
        (
            "GET",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
            {"To": "whatsapp:+14155550142", "From": "+1 415", "PageSize": 50},
            None,
        ),
        ("GET", "http://127.0.0.1:8123/2010-04-01/Accounts/AC1/Messages/SM1.json", None, None),
        ("POST", "http://127.0.0.1:8123/v1/x.json?a=1", {"b": "c d"}, None),
    ],
)
def test_prepared_request_is_what_requests_would_prepare(
    method: str, uri: str, params: dict[str, object] | None, data: dict[str, object] | None
) -> None:
    """prepare_request reuses requests' preparation of a request's head: the URL, headers
    and body it returns must be the ones requests builds for the same call."""
    import requests

    headers = {"User-Agent": "twilio-python/9", "Accept": "application/json"}
    if data:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    body = form_encode(data) if data else None
    query = form_encode(params).decode() if params else None
    for _ in range(2):  # the second call comes from the cached head
        ours = prepare_request(method, uri, query=query, body=body, headers=headers, auth=auth)
        theirs = requests.Request(
            method, uri, params=query, data=body, headers=headers, auth=auth
        ).prepare()
        assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
        assert dict(ours.headers) == dict(theirs.headers)


def test_a_thread_finds_its_connection_pool_once(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests works out a request's connection pool and TLS settings on every request
    (stat-ing a CA bundle path each time); the gateway's adapter does it once per host
    and thread, and again after close() has closed the pool."""
    import requests.adapters

    found: list[str] = []
    original = requests.adapters.HTTPAdapter.get_connection_with_tls_context

    def counting(
        self: requests.adapters.HTTPAdapter, request: object, *args: object, **kw: object
    ) -> object:
        found.append(str(getattr(request, "url", "")))
        return original(self, request, *args, **kw)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "get_connection_with_tls_context", counting)
    gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=sandbox.url)
    for n in range(3):
        gateway.send(text(f"ro {n} ready"))
    assert len(found) == 1
    gateway.close()
    gateway.send(text("after close"))
    assert len(found) == 2
    assert sorted(stored_bodies(sandbox)) == sorted(
        [*(f"ro {n} ready" for n in range(3)), "after close"]
    )


def test_unicode_and_reserved_characters_arrive_intact(
    sandbox: SandboxServer, gateway: TwilioGateway
) -> None:
    body = "Tu Corolla está listo ✅ & 100% = paid + tax? Reply 1/2"
    gateway.send(text(body))
    assert stored_bodies(sandbox) == [body]


def test_segments_follow_gsm7_and_ucs2(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    assert gateway.send(text("a" * 160)).num_segments == 1
    assert gateway.send(text("a" * 161)).num_segments == 2
    assert gateway.send(text("é" * 159 + "€")).num_segments == 2  # € costs two septets
    assert gateway.send(text("✅" * 70)).num_segments == 1
    assert gateway.send(text("✅" * 71)).num_segments == 2


def test_template_through_messaging_service(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    msg = OutgoingMessage(
        to="whatsapp:" + CUSTOMER,
        messaging_service_sid=SERVICE,
        content_sid="HX" + "0" * 32,
        content_variables={"1": "Sam", "2": "4pm"},
        validity_period=3600,
    )
    sent = gateway.send(msg)
    stored = sandbox.state.get_message(sent.sid)
    assert stored is not None
    assert sent.status == "accepted"
    assert stored.content_variables == '{"1":"Sam","2":"4pm"}'
    assert stored.messaging_service_sid == SERVICE
    found = gateway.find_existing(
        to=msg.to,
        from_=None,
        messaging_service_sid=SERVICE,
        body=None,
        content_sid=msg.content_sid,
        created_after=datetime.now(UTC),
    )
    assert found is not None and found.sid == sent.sid


def test_official_client_lists_and_pages(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    sids = [gateway.send(text(f"update {n}")).sid for n in range(7)]
    gateway.send(text("someone else", to="+14155550177"))
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = sandbox.url
    listed = client.messages.list(to=CUSTOMER, from_=ROOFTOP, limit=50, page_size=3)
    assert [m.sid for m in listed] == list(reversed(sids))  # newest first, across 3 pages
    assert listed[0].body == "update 6"


def test_find_existing_adopts_a_message_accepted_before_a_500(
    sandbox: SandboxServer, gateway: TwilioGateway
) -> None:
    attempt_at = datetime.now(UTC)
    sandbox.inject("500_after")
    error = send_error(gateway, text())
    assert error.kind is ErrorKind.AMBIGUOUS and error.http_status == 500
    found = gateway.find_existing(
        to=CUSTOMER,
        from_=ROOFTOP,
        messaging_service_sid=None,
        body="Your RAV4 is ready for pickup.",
        content_sid=None,
        created_after=attempt_at,
    )
    assert found is not None
    assert found.sid == sandbox.state.list_messages()[0].sid


def test_find_existing_ignores_other_bodies_and_old_messages(
    sandbox: SandboxServer, gateway: TwilioGateway
) -> None:
    gateway.send(text("Checked in"))

    def lookup(body: str, created_after: datetime) -> SentMessage | None:
        return gateway.find_existing(
            to=CUSTOMER,
            from_=ROOFTOP,
            messaging_service_sid=None,
            body=body,
            content_sid=None,
            created_after=created_after,
        )

    assert lookup("Ready", datetime.now(UTC)) is None
    assert lookup("Checked in", datetime.now(UTC) + timedelta(minutes=10)) is None
    assert lookup("Checked in", datetime.now(UTC) - timedelta(minutes=1)) is not None


def test_500_before_stores_nothing(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    sandbox.inject("500_before")
    assert send_error(gateway, text()).kind is ErrorKind.AMBIGUOUS
    assert stored_bodies(sandbox) == []
    assert gateway.send(text()).status == "queued"


def test_429_is_rate_limited_with_retry_after(
    sandbox: SandboxServer, gateway: TwilioGateway
) -> None:
    sandbox.inject("429", retry_after=3)
    error = send_error(gateway, text())
    assert error.kind is ErrorKind.RATE_LIMITED
    assert (error.code, error.http_status, error.retry_after) == (20429, 429, 3.0)
    assert not error.permanent


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (21610, 400, ErrorKind.UNSUBSCRIBED),
        (21211, 400, ErrorKind.INVALID_NUMBER),
        (21408, 400, ErrorKind.ROUTE_DISABLED),
        (21611, 400, ErrorKind.RATE_LIMITED),
        (63016, 400, ErrorKind.OUTSIDE_WINDOW),
        (20003, 401, ErrorKind.AUTH),
        (21999, 400, ErrorKind.PERMANENT),
    ],
)
def test_injected_errors_map_to_kinds(
    sandbox: SandboxServer, gateway: TwilioGateway, code: int, status: int, kind: ErrorKind
) -> None:
    sandbox.inject("error", code=code, status=status)
    error = send_error(gateway, text())
    assert (error.kind, error.code, error.http_status) == (kind, code, status)


def test_sandbox_validation_errors(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    assert send_error(gateway, text(to="555-0142")).kind is ErrorKind.INVALID_NUMBER
    assert send_error(gateway, text(to=LANDLINE)).kind is ErrorKind.NOT_TEXTABLE
    no_body = send_error(gateway, OutgoingMessage(to=CUSTOMER, from_=ROOFTOP))
    assert (no_body.code, no_body.kind) == (21602, ErrorKind.PERMANENT)
    no_sender = send_error(gateway, OutgoingMessage(to=CUSTOMER, body="hi"))
    assert no_sender.code == 21603 and no_sender.permanent


def test_slow_response_times_out_as_ambiguous(sandbox: SandboxServer) -> None:
    impatient = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=sandbox.url, timeout=0.2)
    sandbox.inject("delay_ms", delay_ms=1000)
    try:
        error = send_error(impatient, text())
    finally:
        impatient.close()
    assert error.kind is ErrorKind.AMBIGUOUS
    assert stored_bodies(sandbox) == ["Your RAV4 is ready for pickup."]


def test_reset_connection_is_ambiguous(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    sandbox.inject("reset")
    error = send_error(gateway, text())
    assert error.kind is ErrorKind.AMBIGUOUS and error.http_status is None
    assert len(stored_bodies(sandbox)) == 1
    assert gateway.send(text("next")).status == "queued"  # the pool recovers


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=f"http://127.0.0.1:{port}")
    error = send_error(nobody, text())
    assert error.kind is ErrorKind.TRANSIENT and not error.ambiguous


def test_bad_credentials_are_auth_errors(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    assert gateway.check_credentials() == "Pitwall Sandbox"
    wrong = TwilioGateway(ACCOUNT_SID, "not-the-token", api_url=sandbox.url)
    for call in (wrong.check_credentials, lambda: wrong.send(text())):
        with pytest.raises(SendError) as caught:
            call()
        assert (caught.value.kind, caught.value.code, caught.value.http_status) == (
            ErrorKind.AUTH,
            20003,
            401,
        )
    assert stored_bodies(sandbox) == []


def test_unknown_sid_fetch_is_permanent(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    with pytest.raises(SendError) as caught:
        gateway.fetch("SM" + "f" * 32)
    assert caught.value.http_status == 404 and caught.value.permanent


def test_region_and_edge_from_the_environment_are_ignored(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    local = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=sandbox.url)
    assert local.send(text()).sid.startswith("SM")


def test_concurrent_sends_from_a_thread_pool(
    sandbox: SandboxServer, gateway: TwilioGateway
) -> None:
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda n: gateway.send(text(f"ro {n} ready")), range(50)))
    assert len({sent.sid for sent in results}) == 50
    assert sorted(stored_bodies(sandbox)) == sorted(f"ro {n} ready" for n in range(50))


def test_a_proxy_from_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment's proxy settings are read once per host, not dropped: a send goes
    through HTTP_PROXY (here a socket that records the request line and answers 502)."""
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")

        def proxy() -> None:
            conn, _ = listener.accept()
            with conn:
                seen.append(conn.recv(65536).split(b"\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=proxy)
        thread.start()
        gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url="http://twilio.invalid")
        with pytest.raises(SendError):
            gateway.send(text())
        thread.join(timeout=5)
    assert seen and seen[0].startswith(b"POST http://twilio.invalid/2010-04-01/Accounts/")
