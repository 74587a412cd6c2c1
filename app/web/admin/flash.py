"""Post-redirect-get for the admin forms: what just happened rides a one-read cookie.

A successful POST answers 303 to a page; that page shows the notice (and a new API
token, once) and forgets it, so a reload neither resubmits the form nor shows the
token again. The cookie is signed, scoped to /admin, HttpOnly, and lives a minute.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.config import Settings

COOKIE = "pitwall_admin_flash"
MAX_AGE_SECONDS = 60


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.require_secret_key(), salt="pitwall.admin-flash.v1")


def redirect_with(
    url: str, settings: Settings, *, notice: str, new_token: str | None = None
) -> RedirectResponse:
    """303 to `url`, carrying the notice to show there once."""
    response = RedirectResponse(url, status_code=303)
    value = _serializer(settings).dumps({"notice": notice, "new_token": new_token})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE_SECONDS,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=settings.public_url.startswith("https://"),
    )
    return response


def take(request: Request, settings: Settings) -> dict[str, Any]:
    """The notice waiting for this page ({} when none, stale or forged)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return {}
    try:
        found = _serializer(settings).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return {}
    return found if isinstance(found, dict) else {}


def forget(response: Response) -> Response:
    """Drop the cookie once its page is rendered."""
    response.delete_cookie(COOKIE, path="/admin")
    response.headers["Cache-Control"] = "no-store"  # Back must not bring a shown token back
    return response
