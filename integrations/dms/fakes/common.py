"""Bits every fake shares: injected failures and a request log."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@dataclass
class Fault:
    """One injected failure: answer ``status`` (and Retry-After) instead of the real thing."""

    status: int
    retry_after: float | None = None
    body: str = "injected failure"


@dataclass
class FaultQueue:
    """Failures to answer, in order, before the fake behaves again. Thread-safe."""

    _queue: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with ``status``."""
        with self._lock:
            self._queue.extend(Fault(status, retry_after) for _ in range(times))

    def clear(self) -> None:
        """Forget pending failures."""
        with self._lock:
            self._queue.clear()

    def take(self) -> Response | None:
        """The next failure as a response, or None to behave normally."""
        with self._lock:
            if not self._queue:
                return None
            fault = self._queue.pop(0)
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        return JSONResponse({"error": fault.body}, status_code=fault.status, headers=headers)


def bearer(request: Request) -> str | None:
    """The Bearer token of a request, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None
