"""A minimal, fast Twilio Messages fake for benchmarks: `python -m bench.twilio_fake --port N`.

It speaks Twilio's wire format for what the dispatcher uses (create a message,
list messages by To, fetch the account) on a bare asyncio HTTP/1.1 server with
keep-alive, so it is never the bottleneck; each answer waits `latency_ms` first
(without blocking other requests), like Twilio's API round trip. It runs in its
own process so its CPU never competes with the client's GIL, and it keeps its
own CPU per request small (a counter for SIDs, the date formatted once a second,
orjson, no URL parsing on the create path): Twilio is never on the measured box,
and every microsecond it spends here is taken from the clients sharing two cores.

The plain loops and Pitwall post to the same fake. It remembers every accepted
body, so duplicates and lost messages are counted from what "Twilio" received:
    GET  /_stats              {"count": n, "distinct": d, "duplicates": n - d,
                               "last_accept": when the last create was answered}
    GET  /_records            {"bodies": [...]} in arrival order
    POST /_control?latency_ms=50&reset=1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path
from types import TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent


class _State:
    def __init__(self, latency_ms: float) -> None:
        self.latency = latency_ms / 1000.0
        self.bodies: list[str] = []
        self.messages: list[dict[str, object]] = []
        self.keep_messages = True  # the list endpoint needs them; a soak turns this off
        self.last_accept = 0.0  # when the last create was answered (epoch seconds)


# Unique per fake process: a random prefix and a counter (no system call per SID).
_SID_PREFIX = secrets.token_hex(8)
_SID_COUNTER = itertools.count(1)
_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """RFC 2822 date of this second, formatted once a second."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second, usegmt=True))
    return _date[1]


def _message(account: str, form: dict[str, str]) -> dict[str, object]:
    sid = f"SM{_SID_PREFIX}{next(_SID_COUNTER):016x}"
    now = _http_date()
    service = form.get("MessagingServiceSid")
    return {
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": form.get("Body", ""),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if service else "queued",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"},
        "to": form.get("To"),
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
    }


def _route(state: _State, method: str, target: str, body: bytes) -> tuple[int, object]:
    if method == "POST" and target.endswith("/Messages.json") and "?" not in target:
        # The create path, taken 5,000 times a run: no URL parsing.
        account = target.split("/")[3]
        return _create(state, account, body)
    parts = urlsplit(target)
    path, query = parts.path, dict(parse_qsl(parts.query))
    segments = path.strip("/").split("/")
    if path == "/_stats":
        distinct = len(set(state.bodies))
        count = len(state.bodies)
        return 200, {
            "count": count,
            "distinct": distinct,
            "duplicates": count - distinct,
            "last_accept": state.last_accept,
        }
    if path == "/_records":
        return 200, {"bodies": state.bodies}
    if path == "/_control":
        if "latency_ms" in query:
            state.latency = float(query["latency_ms"]) / 1000.0
        if "keep_messages" in query:
            state.keep_messages = query["keep_messages"] == "1"
        if query.get("reset") == "1":
            state.bodies.clear()
            state.messages.clear()
        return 200, {"latency_ms": state.latency * 1000}
    # /2010-04-01/Accounts/{AC}.json and /2010-04-01/Accounts/{AC}/Messages.json
    if len(segments) == 3 and segments[1] == "Accounts":
        account = segments[2].removesuffix(".json")
        return 200, {"sid": account, "friendly_name": "bench fake", "status": "active"}
    if len(segments) == 4 and segments[3] == "Messages.json":
        account = segments[2]
        if method == "POST":
            return _create(state, account, body)
        to = query.get("To")
        found = [m for m in reversed(state.messages) if to is None or m["to"] == to][:50]
        return 200, {
            "messages": found,
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "uri": path,
            "first_page_uri": path,
            "previous_page_uri": None,
            "start": 0,
            "end": max(0, len(found) - 1),
        }
    return 404, {"code": 20404, "message": f"The requested resource {path} was not found"}


def _create(state: _State, account: str, body: bytes) -> tuple[int, object]:
    form = dict(parse_qsl(body.decode()))
    message = _message(account, form)
    state.bodies.append(str(form.get("Body", "")))
    state.last_accept = time.time() + state.latency  # answered after the latency
    if state.keep_messages:
        state.messages.append(message)
    return 201, message


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_REASONS = {200: "OK", 201: "Created", 404: "Not Found"}


class _Http(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, one request at a time per connection (as clients use it)."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.buffer = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.transport is None:
            return
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end]
        found = _CONTENT_LENGTH.search(head)
        length = int(found.group(1)) if found else 0
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return
        body = self.buffer[head_end + 4 : end]
        self.buffer = self.buffer[end:]
        request_line = head.split(b"\r\n", 1)[0]
        method, target, _version = request_line.decode("latin-1").split(" ", 2)
        status, payload = _route(self.state, method, target, body)
        self.busy = True
        delay = self.state.latency if not target.startswith("/_") else 0.0
        if delay:
            asyncio.get_running_loop().call_later(delay, self._answer, status, payload)
        else:
            self._answer(status, payload)

    def _answer(self, status: int, payload: object) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        data = orjson.dumps(payload)
        reason = _REASONS.get(status, "OK")
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve(port: int, latency_ms: float) -> None:
    state = _State(latency_ms)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Http(state), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeTwilio:
    """Runs the fake in a child process; `with FakeTwilio(latency_ms=50) as fake: fake.url`."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.latency_ms = latency_ms
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(base_url=self.url, timeout=30)

    def __enter__(self) -> FakeTwilio:
        command = [sys.executable, "-m", "bench.twilio_fake", "--port", str(self.port)]
        self._process = subprocess.Popen(
            [*command, "--latency-ms", str(self.latency_ms)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                self._client.get("/_stats")
                return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"the Twilio fake did not start on port {self.port}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def control(
        self, *, latency_ms: float | None = None, reset: bool = False, keep_messages: bool = True
    ) -> None:
        params = {"reset": "1" if reset else "0", "keep_messages": "1" if keep_messages else "0"}
        if latency_ms is not None:
            params["latency_ms"] = str(latency_ms)
        self._client.post("/_control", params=params).raise_for_status()

    def stats(self) -> dict[str, float]:
        stats: dict[str, float] = self._client.get("/_stats").json()
        return stats

    def bodies(self) -> list[str]:
        bodies: list[str] = self._client.get("/_records").json()["bodies"]
        return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    # The fake is not what is measured: on uvloop it takes the least CPU from the
    # clients it shares the machine with (Twilio itself is never on the same box).
    try:
        import uvloop
    except ImportError:  # e.g. Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_serve(args.port, args.latency_ms))


if __name__ == "__main__":
    main()
