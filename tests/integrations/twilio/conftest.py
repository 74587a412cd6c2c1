"""A sandbox Twilio on a free loopback port, a gateway pointed at it, and a tiny
receiver standing in for Pitwall's webhook endpoints."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "sandbox-auth-token"
ROOFTOP = "+14155550100"
LANDLINE = "+14155550111"


@dataclass(frozen=True)
class Received:
    """One webhook the receiver got."""

    path: str
    headers: dict[str, str]
    pairs: list[tuple[str, str]]

    @property
    def form(self) -> dict[str, str]:
        return dict(self.pairs)


class WebhookReceiver:
    """Records form posts and answers with canned TwiML per path."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: dict[str, tuple[int, str]] = {}
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                path = self.path.split("?", 1)[0]
                with receiver._cond:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), parse_qsl(body))
                    )
                    receiver._cond.notify_all()
                    status, reply = receiver.replies.get(path, (200, "<Response/>"))
                payload = reply.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def clear(self) -> None:
        with self._cond:
            self.received.clear()
            self.replies.clear()

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0
    ) -> list[Received]:
        """Wait until ``predicate(received)`` holds; fail the test on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out waiting for webhooks; got {self.received!r}")
                self._cond.wait(remaining)
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    yield hooks
    hooks.close()


@pytest.fixture(scope="module")
def sandbox_server(receiver: WebhookReceiver) -> Iterator[SandboxServer]:
    config = SandboxConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        pitwall_public_url=receiver.url,
        callback_delay_s=0.0,
        phone_numbers=(ROOFTOP,),
        landlines=frozenset({LANDLINE}),
        messaging_services={"MG" + "1" * 32: ROOFTOP},
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer, receiver: WebhookReceiver) -> SandboxServer:
    """The shared sandbox, emptied (messages, faults, callbacks) for each test."""
    sandbox_server.wait_for_callbacks(2.0)
    sandbox_server.reset()
    receiver.clear()
    return sandbox_server


@pytest.fixture(scope="module")
def gateway(sandbox_server: SandboxServer) -> Iterator[TwilioGateway]:
    client = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=sandbox_server.url, timeout=2.0)
    yield client
    client.close()
