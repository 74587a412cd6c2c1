"""`GET /metrics` in Prometheus text format, and webhook timing for the app.

Who may scrape: with `PITWALL_METRICS_TOKEN` set, anyone presenting
`Authorization: Bearer <token>`; without it, only clients on the loopback
interface (the reverse proxy in deploy/ also refuses /metrics from outside).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from app.deps import DatabaseDep, SettingsDep
from app.ops.metrics import build_registry, observe_webhook

router = APIRouter(tags=["operations"])

_lock = threading.Lock()
WEBHOOK_PREFIX = "/webhooks/"


def metrics_token(settings: object) -> str | None:
    """The scrape token: Settings.metrics_token when the field exists, else the env var."""
    token = getattr(settings, "metrics_token", None) or os.environ.get("PITWALL_METRICS_TOKEN")
    return token or None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def app_registry(app: FastAPI, database: object) -> CollectorRegistry:
    """The app's own registry, built on first use (never the global default one)."""
    registry: CollectorRegistry | None = getattr(app.state, "metrics_registry", None)
    if registry is None:
        with _lock:
            registry = getattr(app.state, "metrics_registry", None)
            if registry is None:
                registry = build_registry(getattr(database, "sessions", None))
                app.state.metrics_registry = registry
    return registry


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, settings: SettingsDep, database: DatabaseDep) -> Response:
    """Prometheus exposition; 401 without the token, 403 from outside when no token is set."""
    token = metrics_token(settings)
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            return PlainTextResponse(
                "metrics need Authorization: Bearer <PITWALL_METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not _is_loopback(request.client.host if request.client else None):
        return PlainTextResponse(
            "metrics are served to loopback clients only; set PITWALL_METRICS_TOKEN to "
            "scrape from elsewhere\n",
            status_code=403,
        )
    registry = app_registry(request.app, database)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# The label of every webhook request that matched no route: a label per raw path would
# let anyone grow /metrics (and this process's memory) without bound.
UNMATCHED = "unmatched"


def route_label(scope: Scope) -> str:
    """The route template the request matched (`/webhooks/twilio/status`), else UNMATCHED."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class WebhookTimer:
    """Times each webhook request (`pitwall_webhook_seconds{path=...}`), response sent included.

    Labelled by route template, never by the raw path. A plain ASGI middleware:
    `@app.middleware("http")` (BaseHTTPMiddleware) would wrap every request, webhooks or
    not, in an extra task and a body stream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(WEBHOOK_PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            observe_webhook(route_label(scope), time.perf_counter() - started)


def instrument_app(app: FastAPI) -> None:
    """Time every webhook request (`pitwall_webhook_seconds{path=...}`)."""
    app.add_middleware(WebhookTimer)
