"""Who is asking: `ApiPrincipalDep` for /api/v1 routes, `WebUserDep` for pages.

Every /api/v1 route depends on `ApiPrincipalDep`: 401 without a valid bearer token
or a logged-in browser session (so htmx can call the JSON API). A browser session
counts for unsafe methods only with the session's CSRF token in `X-CSRF-Token`.
Pages depend on `WebUserDep`: without a session they redirect to /login.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, cast
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.csrf import CSRF_FIELD, CSRF_HEADER, csrf_matches
from app.auth.service import Principal, principal_for_token, principal_for_user
from app.auth.sessions import (
    ABSOLUTE_TIMEOUT,
    COOKIE_NAME,
    SessionCodec,
    SessionCookie,
    live_session,
)
from app.config import Settings
from app.db import utcnow
from app.deps import Database, DatabaseDep, SettingsDep

_bearer = HTTPBearer(auto_error=False, description="API token from `pitwall tokens create`")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNREAD = object()


@lru_cache(maxsize=4)
def _codec(secret_key: str) -> SessionCodec:
    return SessionCodec(secret_key)


def session_codec(settings: Settings) -> SessionCodec:
    return _codec(settings.require_secret_key())


def read_session_cookie(request: Request, settings: Settings) -> SessionCookie | None:
    """The validly signed session cookie of this request (not yet checked in the database)."""
    value = request.cookies.get(COOKIE_NAME)
    # No cookie, no key needed: API-only deployments may run without PITWALL_SECRET_KEY.
    return session_codec(settings).loads(value, now=utcnow()) if value else None


def set_session_cookie(response: Response, cookie: SessionCookie, settings: Settings) -> None:
    """HttpOnly, SameSite=Lax, Secure when the public URL is https."""
    response.set_cookie(
        COOKIE_NAME,
        session_codec(settings).dumps(cookie),
        max_age=int(ABSOLUTE_TIMEOUT.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
    )


@dataclass(frozen=True)
class WebUser:
    """The logged-in person behind a page request."""

    user_id: int
    email: str
    role: str
    group_id: int
    principal: Principal
    session_id: int  # the web_session row
    sid: str  # the id in the cookie (never stored)
    csrf: str


def _login_redirect(request: Request) -> HTTPException:
    if request.headers.get("HX-Request"):
        # htmx does not follow a redirect into the page; it does honour HX-Redirect.
        return HTTPException(
            status_code=401, detail="log in again", headers={"HX-Redirect": "/login"}
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(
        status_code=303,
        detail="log in first",
        headers={"Location": f"/login?next={quote(target, safe='')}"},
    )


def optional_web_user(request: Request, database: Database, settings: Settings) -> WebUser | None:
    """The logged-in, still active user of this request's session, if any (read once)."""
    cached = getattr(request.state, "web_user", _UNREAD)
    if cached is not _UNREAD:
        return cast(WebUser | None, cached)
    cookie = read_session_cookie(request, settings)
    user: WebUser | None = None
    if cookie is not None and cookie.sid is not None:
        with database.transaction() as session:
            found = live_session(session, sid=cookie.sid, now=utcnow())
            if found is not None:
                record, row = found
                user = WebUser(
                    user_id=row.id,
                    email=row.email,
                    role=row.role,
                    group_id=row.group_id,
                    principal=principal_for_user(row),
                    session_id=record.id,
                    sid=cookie.sid,
                    csrf=record.csrf_token,
                )
    request.state.web_user = user
    return user


def web_user(request: Request, database: DatabaseDep, settings: SettingsDep) -> WebUser:
    """The logged-in user of a page request; otherwise a redirect to /login."""
    user = optional_web_user(request, database, settings)
    if user is None:
        raise _login_redirect(request)
    request.state.principal = user.principal
    return user


WebUserDep = Annotated[WebUser, Depends(web_user)]


async def require_csrf(request: Request, database: DatabaseDep, settings: SettingsDep) -> None:
    """403 unless the POST carries this session's CSRF token (form field or header).

    Without a logged-in session there is nothing to forge: the visitor goes to /login.
    """
    user = await run_in_threadpool(optional_web_user, request, database, settings)
    if user is None:
        raise _login_redirect(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not csrf_matches(user.csrf, given):
        raise HTTPException(
            status_code=403,
            detail="this form expired or did not come from Pitwall; reload the page and try again",
        )


CsrfDep = Depends(require_csrf)


def require_role(user: WebUser, *roles: str) -> None:
    """Pages a role may not use answer 404, like data one may not see."""
    if user.role not in roles:
        raise HTTPException(status_code=404, detail="Not Found")


def api_principal(
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve the bearer token; a browser session (with CSRF for writes) also counts."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        with database.transaction() as session:
            principal = principal_for_token(session, credentials.credentials)
        if principal is not None:
            return principal
    state_principal = getattr(request.state, "principal", None)
    if isinstance(state_principal, Principal):
        return state_principal
    user = optional_web_user(request, database, settings)
    if user is not None and (
        request.method in SAFE_METHODS or csrf_matches(user.csrf, request.headers.get(CSRF_HEADER))
    ):
        request.state.principal = user.principal
        return user.principal
    raise HTTPException(
        status_code=401,
        detail="a valid API token is required (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )


ApiPrincipalDep = Annotated[Principal, Depends(api_principal)]
