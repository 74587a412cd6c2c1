"""Error pages: a browser gets an HTML page for 403, 404 and 500, with the usual header
and a way back; the JSON API, webhooks and probes keep their JSON and plain answers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.deps import WebUser, optional_web_user
from app.web.templating import error_page

log = logging.getLogger(__name__)

# Machines read these; they never get a page, whatever they accept.
MACHINE_PATHS = ("/api/", "/webhooks/", "/metrics", "/healthz", "/readyz", "/openapi.json")
PAGE_STATUSES = frozenset({403, 404, 405})


def wants_html(request: Request) -> bool:
    """A browser asking for a page (Accept: text/html), not a client of the API."""
    if request.url.path.startswith(MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def _user_of(request: Request) -> WebUser | None:
    try:
        return optional_web_user(request, request.app.state.database, request.app.state.settings)
    except Exception:  # the error page must show even when the session cannot be read
        log.warning("error page: could not read the session", exc_info=True)
        return None


def _sentence(detail: object) -> str | None:
    if not isinstance(detail, str) or not detail:
        return None
    text = detail[0].upper() + detail[1:]
    return text if text.endswith(".") else text + "."


async def http_error(request: Request, exc: Exception) -> Response:
    """403/404/405 as pages for browsers; everything else as FastAPI answers it."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code not in PAGE_STATUSES or not wants_html(request):
        return await http_exception_handler(request, exc)
    user = await run_in_threadpool(_user_of, request)
    detail = _sentence(exc.detail) if exc.status_code == 403 else None
    response = error_page(request, exc.status_code, user=user, detail=detail)
    response.headers.update(exc.headers or {})
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected failure: a page for browsers, the plain 500 for everyone else.

    The database is not asked who is logged in: it may be what failed.
    """
    if wants_html(request):
        user = getattr(request.state, "web_user", None)
        return error_page(request, 500, user=user if isinstance(user, WebUser) else None)
    return PlainTextResponse("Internal Server Error", status_code=500)


def install_error_pages(app: FastAPI) -> None:
    """Register the handlers (app.main calls this once per app)."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
