"""A local stand-in for Twilio, for the demo, tests and benchmarks.

``create_sandbox_app(config)`` builds an ASGI app that answers Twilio's REST API
(``/2010-04-01/...``) in Twilio's wire format, posts signed status callbacks, shows a
phone view at ``/`` and accepts injected faults. ``SandboxServer`` runs it with
uvicorn on 127.0.0.1 in a background thread::

    with SandboxServer(SandboxConfig(account_sid=..., auth_token=...,
                                     pitwall_public_url="http://127.0.0.1:8000")) as sandbox:
        gateway = TwilioGateway(sid, token, api_url=sandbox.url)
        sandbox.inject("500_after")
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from integrations.local_server import LocalServer
from integrations.twilio.sandbox_callbacks import CallbackDispatcher
from integrations.twilio.sandbox_config import SandboxConfig
from integrations.twilio.sandbox_keypad import keypad_router
from integrations.twilio.sandbox_phone import MESSAGES_PATH, CustomerPhone
from integrations.twilio.sandbox_phone_views import phone_router
from integrations.twilio.sandbox_services import ServiceDirectory, services_router
from integrations.twilio.sandbox_state import FAULT_KINDS, Fault, SandboxState
from integrations.twilio.sandbox_views import ABORT_SCOPE_KEY, api_router

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "create_sandbox_app",
]

logger = logging.getLogger(__name__)


def _abort_transport(send: Send) -> bool:
    """Drop the TCP connection with no HTTP response at all.

    ASGI has no "reset" message, and an exception before ``http.response.start``
    makes uvicorn answer 500. uvicorn's ``send`` is a bound method of its
    per-request cycle, which holds the asyncio transport; aborting that is a real
    reset. Returns False under servers that do not expose it.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if not callable(abort):
        return False
    abort()
    return True


class _SandboxApp(FastAPI):
    """FastAPI that lets a route abort its own connection (fault ``reset``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Captured here, before Starlette's middleware wraps ``send``.
            scope[ABORT_SCOPE_KEY] = functools.partial(_abort_transport, send)
        await super().__call__(scope, receive, send)


def create_sandbox_app(
    config: SandboxConfig,
    state: SandboxState | None = None,
    dispatcher: CallbackDispatcher | None = None,
) -> FastAPI:
    """Build the sandbox ASGI app; ``app.state.sandbox`` holds the store.

    The status-callback worker starts with the app (lifespan) unless a running
    ``dispatcher`` is passed in, as :class:`SandboxServer` does.
    """
    state = state or SandboxState(config.phone_numbers)
    owns_dispatcher = dispatcher is None
    callbacks = dispatcher or CallbackDispatcher(state, config.auth_token)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owns_dispatcher:
            callbacks.start()
        try:
            yield
        finally:
            if owns_dispatcher:
                callbacks.stop()

    app = _SandboxApp(title="Twilio sandbox", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.sandbox = state
    app.state.callbacks = callbacks
    app.include_router(api_router(config, state, callbacks))
    services = ServiceDirectory(config, config.webhook_url(MESSAGES_PATH))
    app.state.services = services

    def number_sid(e164: str) -> str | None:
        return next((n.sid for n in state.list_numbers() if n.phone_number == e164), None)

    app.include_router(services_router(config, services, number_sid))
    phone = CustomerPhone(config, state, services)
    app.include_router(phone_router(config, state, phone))
    app.include_router(keypad_router(state, phone))

    @app.post("/_sandbox/faults")
    async def add_faults(request: Request) -> Response:
        data = await request.json()
        specs = data.get("faults", [data]) if isinstance(data, dict) else data
        try:
            parsed = [(Fault.from_json(spec), int(spec.get("count", 1))) for spec in specs]
        except (TypeError, ValueError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for fault, count in parsed:
            state.add_faults(fault, count)
        return JSONResponse({"faults_pending": len(state.faults)})

    @app.get("/_sandbox/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [vars(fault) for fault in list(state.faults)]}

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        callbacks.clear()
        state.reset()
        services.reset()
        return {"status": "reset"}

    @app.get("/_sandbox/messages")
    async def received() -> dict[str, Any]:
        return state.dump()

    return app


class SandboxServer:
    """Runs the sandbox with uvicorn on 127.0.0.1 in a background thread.

    ``port=0`` picks a free port; ``.url`` is the base to give ``TwilioGateway``.
    Usable as a context manager.
    """

    def __init__(self, config: SandboxConfig, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.config = config
        self.state = SandboxState(config.phone_numbers)
        self.callbacks = CallbackDispatcher(self.state, config.auth_token)
        self.app = create_sandbox_app(config, self.state, self.callbacks)
        # Many dispatcher threads keep connections open: a deep backlog, long keep-alive.
        self._http = LocalServer(
            self.app, host=host, port=port, name="twilio-sandbox", keep_alive_seconds=30
        )

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if not self._http.started:
            raise RuntimeError("sandbox is not started")
        return self._http.port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:53412`` (the REST API and the phone view)."""
        return self._http.url

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Serve in a daemon thread, with the callback worker, once uvicorn accepts connections."""
        if self._http.started:
            return self
        self.callbacks.start()
        try:
            self._http.start(timeout)
        except RuntimeError:
            self.callbacks.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and stop the callback worker."""
        self._http.stop(timeout)
        self.callbacks.stop()

    def inject(self, kind: str, count: int = 1, **params: Any) -> None:
        """Queue ``count`` faults for the next message creates (same shape as the JSON API).

        ``inject("429", retry_after=3)``, ``inject("error", code=21610, status=400)``,
        ``inject("delay_ms", delay_ms=1500)``, ``inject("fail", error_code=30006)``.
        """
        self.state.add_faults(Fault.from_json({"kind": kind, **params}), count)

    def reset(self) -> None:
        """Forget everything received and any pending faults or callbacks."""
        self.callbacks.clear()
        self.state.reset()
        self.app.state.services.reset()

    def wait_for_callbacks(self, timeout: float = 5.0) -> bool:
        """Block until every scheduled status callback has been posted."""
        return self.callbacks.wait_idle(timeout)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
