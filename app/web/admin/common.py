"""What every admin page shares: the page frame with its notice, secrets shown as "(set)"."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from app.auth.deps import WebUser, require_role
from app.config import Settings
from app.dealers.models import Rooftop
from app.deps import DatabaseDep
from app.web import queries
from app.web.admin import flash
from app.web.templating import render

# DMS credentials in the dealer file (token, client_secret, username, password, ...): the
# admin page says whether one is set, never what it is.
CREDENTIAL_WORDS = ("token", "secret", "password", "passwd", "user", "key", "auth", "private")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def shown_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A rooftop's settings as the admin page shows them: credentials as "(set)"."""
    return {key: _shown(str(key), value) for key, value in config.items()}


def _shown(key: str, value: Any) -> Any:
    name = key.lower()
    if any(word in name for word in CREDENTIAL_WORDS) and not name.endswith("_url"):
        return "(set)" if value else "(not set)"
    if isinstance(value, Mapping):
        return shown_settings(value)
    if isinstance(value, str):  # https://user:password@bridge.example
        return _URL_CREDENTIALS.sub("***@", value)
    return value


def admin_page(
    request: Request,
    user: WebUser,
    settings: Settings,
    template: str,
    context: dict[str, Any],
    *,
    error: str | None = None,
) -> Response:
    """An admin page with the notice of the POST that led here (once), or what to fix (422)."""
    shown = {} if error else flash.take(request, settings)
    response: HTMLResponse = render(
        request,
        template,
        {
            "nav": "admin",
            "notice": shown.get("notice"),
            "new_token": shown.get("new_token"),
            "error": error,
            **context,
        },
        user=user,
        status_code=422 if error else 200,
    )
    return flash.forget(response) if shown else response


def admin_rooftop(database: DatabaseDep, user: WebUser, slug: str | None) -> Rooftop | None:
    """A rooftop this admin may configure: the named one, or the first when none is named."""
    require_role(user, "admin")
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
    if slug is None:
        return rooftops[0] if rooftops else None
    return next((r for r in rooftops if r.slug == slug), None)
