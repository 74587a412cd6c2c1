"""What every request passes before any route, and every answer on its way out.

- Body caps: a body over the cap is refused with 413 before a signature or token is
  checked, and without being read whole (a declared Content-Length over the cap is
  refused before the first byte of the body is read).
- Security headers: a Content-Security-Policy, no framing, no MIME sniffing, and
  `Cache-Control: no-store` unless a route chose its own (pages, fragments and CSVs of
  a signed-in user must not stay in a shared or browser cache).
- The client's address: X-Forwarded-For / -Proto are believed only from the proxies
  named in FORWARDED_ALLOW_IPS; unset, nobody (not even loopback) may choose an address.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.config import Settings

# Twilio's largest form (a 1,600-character text, ten media URLs) is a few KB.
WEBHOOK_BODY_BYTES = 256 * 1024
# Pages and the JSON API take short forms and replies; only line photos upload files.
BODY_BYTES = 1024 * 1024
# An advisor's photo of a repair line (app/customer_page/photos.py takes up to 5 MB).
UPLOAD_BODY_BYTES = 6 * 1024 * 1024
WEBHOOK_PREFIX = "/webhooks/"

# No inline script, no inline handlers, no eval: the inbox's "not while typing" refresh
# is a listener in /static/pitwall.js, not an htmx trigger condition (which needs eval).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# FastAPI's API description pages load Swagger UI / ReDoc from a CDN with an inline
# script; they hold no data, so they get only the parts that do not stop them working.
API_DOCS_PREFIXES = ("/docs", "/redoc")
API_DOCS_POLICY = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


class BodyLimit:
    """Caps each request body by path: webhooks WEBHOOK_BODY_BYTES, the rest BODY_BYTES.

    One cap per request, chosen here: a route-level `max_body_size` (FastAPI's) would
    override it, so the app sets none. A body without Content-Length is counted as it
    is read (Starlette's RequestBodyLimitMiddleware) and cut off at the cap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.webhooks = RequestBodyLimitMiddleware(app, max_body_size=WEBHOOK_BODY_BYTES)
        self.others = RequestBodyLimitMiddleware(app, max_body_size=BODY_BYTES)
        self.uploads = RequestBodyLimitMiddleware(app, max_body_size=UPLOAD_BODY_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        webhook = scope["path"].startswith(WEBHOOK_PREFIX)
        upload = _is_photo_upload(scope["path"])
        cap = WEBHOOK_BODY_BYTES if webhook else UPLOAD_BODY_BYTES if upload else BODY_BYTES
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            # Answered before a byte of the body is read, and before any signature or token.
            where = "a webhook" if webhook else "a request"
            response = PlainTextResponse(
                f"the body ({declared:,} bytes) is over the limit of {where} "
                f"({cap // 1024:,} KB)\n",
                status_code=413,
            )
            await response(scope, receive, send)
            return
        await (self.webhooks if webhook else self.uploads if upload else self.others)(
            scope, receive, send
        )


def _is_photo_upload(path: str) -> bool:
    """POST /repair-orders/<id>/lines/<id>/photos: the one route that takes a file."""
    return path.startswith("/repair-orders/") and path.endswith("/photos")


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "")
    # 19 digits are more than any cap; int() of thousands of digits raises.
    return int(value[:19]) if value.isascii() and value.isdigit() else None


class SecurityHeaders:
    """Adds the headers above to every HTTP answer (a route's own Cache-Control wins)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        docs = scope["path"].startswith(API_DOCS_PREFIXES)
        policy = (API_DOCS_POLICY if docs else CONTENT_SECURITY_POLICY).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                headers.append((b"content-security-policy", policy))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_guards(app: FastAPI, settings: Settings) -> None:
    """Add the middlewares (app.main calls this once per app, after the others)."""
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    if settings.forwarded_allow_ips:
        # Outermost, so everything inside (metrics, sessions, login limits) sees the client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
