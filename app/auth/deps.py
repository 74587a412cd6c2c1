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
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.csrf import CSRF_FIELD, CSRF_HEADER, csrf_matches
from app.auth.service import Principal, active_user, principal_for_token, principal_for_user
from app.auth.sessions import ABSOLUTE_TIMEOUT, COOKIE_NAME, SessionCodec, WebSession, touched
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


def read_web_session(request: Request, settings: Settings) -> WebSession | None:
    """The valid session in this request's cookie, read once per request."""
    cached = getattr(request.state, "web_session", _UNREAD)
    if cached is not _UNREAD:
        return cast(WebSession | None, cached)
    value = request.cookies.get(COOKIE_NAME)
    # No cookie, no key needed: API-only deployments may run without PITWALL_SECRET_KEY.
    web_session = session_codec(settings).loads(value, now=utcnow()) if value else None
    request.state.web_session = web_session
    return web_session


def set_session_cookie(response: Response, web_session: WebSession, settings: Settings) -> None:
    """HttpOnly, SameSite=Lax, Secure when the public URL is https."""
    response.set_cookie(
        COOKIE_NAME,
        session_codec(settings).dumps(web_session),
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
    session: WebSession

    @property
    def csrf(self) -> str:
        return self.session.csrf


def _user_for_session(database: Database, web_session: WebSession) -> WebUser | None:
    if web_session.user_id is None:
        return None
    with database.transaction() as session:
        user = active_user(session, web_session.user_id)
        if user is None:
            return None
        return WebUser(
            user_id=user.id,
            email=user.email,
            role=user.role,
            group_id=user.group_id,
            principal=principal_for_user(user),
            session=web_session,
        )


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
    """The logged-in, still active user of this request, if any."""
    web_session = read_web_session(request, settings)
    return _user_for_session(database, web_session) if web_session else None


def web_user(request: Request, database: DatabaseDep, settings: SettingsDep) -> WebUser:
    """The logged-in user of a page request; otherwise a redirect to /login."""
    user = optional_web_user(request, database, settings)
    if user is None:
        raise _login_redirect(request)
    # Sliding idle expiry: pages re-issue the cookie (see app.web.templating.render).
    request.state.refreshed_session = touched(user.session, now=utcnow())
    request.state.principal = user.principal
    return user


WebUserDep = Annotated[WebUser, Depends(web_user)]


async def require_csrf(request: Request, settings: SettingsDep) -> None:
    """403 unless the POST carries this session's CSRF token (form field or header).

    Without a logged-in session there is nothing to forge: the visitor goes to /login.
    """
    web_session = read_web_session(request, settings)
    if web_session is None or not web_session.authenticated:
        raise _login_redirect(request)
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    if not csrf_matches(web_session.csrf, given):
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
    web_session = read_web_session(request, settings)
    if web_session is not None and (
        request.method in SAFE_METHODS
        or csrf_matches(web_session.csrf, request.headers.get(CSRF_HEADER))
    ):
        user = _user_for_session(database, web_session)
        if user is not None:
            request.state.principal = user.principal
            return user.principal
    raise HTTPException(
        status_code=401,
        detail="a valid API token is required (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )


ApiPrincipalDep = Annotated[Principal, Depends(api_principal)]
