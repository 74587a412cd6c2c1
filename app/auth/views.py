"""Login and logout pages."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.csrf import csrf_matches
from app.auth.deps import (
    CsrfDep,
    WebUserDep,
    clear_session_cookie,
    optional_web_user,
    read_session_cookie,
    set_session_cookie,
)
from app.auth.service import authenticate
from app.auth.sessions import SessionCookie, anonymous_cookie, end_session, start_session
from app.auth.throttle import clear_failed_logins, login_wait, record_failed_login
from app.db import utcnow
from app.deps import DatabaseDep, SettingsDep
from app.web.templating import templates

router = APIRouter(include_in_schema=False)


def client_ip(request: Request) -> str:
    """The client's address; behind a proxy named in FORWARDED_ALLOW_IPS, the real one."""
    return request.client.host if request.client else "unknown"


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never "//evil.example" or "https://...".
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(
    request: Request,
    cookie: SessionCookie,
    settings: SettingsDep,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    context = {
        "title": "Log in",
        "nav": "",
        "user": None,
        "csrf": cookie.csrf,
        "next_url": next_url,
        "email": email,
        "error": error,
    }
    response = templates.TemplateResponse(
        request, "web/login.html", context, status_code=status_code, headers=headers
    )
    set_session_cookie(response, cookie, settings)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, database: DatabaseDep, settings: SettingsDep, next: str | None = None
) -> Response:
    """The login form; someone already logged in goes straight on."""
    if optional_web_user(request, database, settings) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    cookie = read_session_cookie(request, settings)
    if cookie is None or cookie.authenticated:
        cookie = anonymous_cookie(now=utcnow())
    return _login_page(request, cookie, settings, next_url=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; on success start a brand-new session (no fixation)."""
    now = utcnow()
    next_url = _safe_next(next)
    cookie = read_session_cookie(request, settings)
    if cookie is None or cookie.authenticated or not csrf_matches(cookie.csrf, csrf_token):
        return _login_page(
            request,
            anonymous_cookie(now=now),
            settings,
            next_url=next_url,
            email=email,
            error="The login form expired. Please enter your password again.",
            status_code=403,
        )
    ip = client_ip(request)
    user = None
    sid = ""
    with database.transaction() as session:
        wait = login_wait(session, email=email, ip=ip, now=now)
        if wait is None:
            user = authenticate(session, email=email, password=password)
            if user is None:
                record_failed_login(session, email=email, ip=ip, now=now)
            else:
                clear_failed_logins(session, email=email, ip=ip)
                sid, _record = start_session(
                    session,
                    user_id=user.id,
                    now=now,
                    user_agent=request.headers.get("user-agent", ""),
                    ip=ip,
                )
    if wait is not None:
        seconds = math.ceil(wait.total_seconds())
        return _login_page(
            request,
            cookie,
            settings,
            next_url=next_url,
            email=email,
            error=(
                f"Too many failed attempts. Try again in {math.ceil(seconds / 60)} min "
                "or ask an admin to set a new password."
            ),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
    if user is None:
        return _login_page(
            request,
            cookie,
            settings,
            next_url=next_url,
            email=email,
            error="That email and password do not match a login.",
            status_code=401,
        )
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, SessionCookie(sid=sid, csrf=None), settings)
    return response


@router.post("/logout", dependencies=[CsrfDep])
def logout(user: WebUserDep, database: DatabaseDep, settings: SettingsDep) -> Response:
    """End the session on the server, so even a copy of this browser's cookie stops working."""
    with database.transaction() as session:
        end_session(session, sid=user.sid, now=utcnow())
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response
