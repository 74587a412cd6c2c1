"""Login and logout pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.csrf import csrf_matches
from app.auth.deps import (
    CsrfDep,
    clear_session_cookie,
    optional_web_user,
    read_web_session,
    set_session_cookie,
)
from app.auth.service import authenticate
from app.auth.sessions import WebSession, new_session
from app.auth.throttle import LoginThrottle
from app.db import utcnow
from app.deps import DatabaseDep, SettingsDep
from app.web.templating import templates

router = APIRouter(include_in_schema=False)


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle | None = getattr(request.app.state, "login_throttle", None)
    if throttle is None:
        throttle = request.app.state.login_throttle = LoginThrottle()
    return throttle


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never "//evil.example" or "https://...".
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(
    request: Request,
    web_session: WebSession,
    settings: SettingsDep,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "title": "Log in",
        "nav": "",
        "user": None,
        "csrf": web_session.csrf,
        "next_url": next_url,
        "email": email,
        "error": error,
    }
    response = templates.TemplateResponse(
        request, "web/login.html", context, status_code=status_code
    )
    set_session_cookie(response, web_session, settings)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, database: DatabaseDep, settings: SettingsDep, next: str | None = None
) -> Response:
    """The login form; someone already logged in goes straight on."""
    if optional_web_user(request, database, settings) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    web_session = read_web_session(request, settings)
    if web_session is None or web_session.authenticated:
        web_session = new_session(now=utcnow())
    return _login_page(request, web_session, settings, next_url=_safe_next(next))


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
    current = read_web_session(request, settings)
    if current is None or not csrf_matches(current.csrf, csrf_token):
        return _login_page(
            request,
            new_session(now=now),
            settings,
            next_url=next_url,
            email=email,
            error="The login form expired. Please enter your password again.",
            status_code=403,
        )
    ip = request.client.host if request.client else "unknown"
    throttle = _throttle(request)
    wait = throttle.retry_after(email, ip, now=now)
    if wait is not None:
        minutes = max(int(wait.total_seconds() // 60) + 1, 1)
        return _login_page(
            request,
            current,
            settings,
            next_url=next_url,
            email=email,
            error=f"Too many failed attempts. Try again in {minutes} min or ask an admin.",
            status_code=429,
        )
    with database.transaction() as session:
        user = authenticate(session, email=email, password=password)
        user_id = user.id if user else None
    if user_id is None:
        throttle.record_failure(email, ip, now=now)
        return _login_page(
            request,
            current,
            settings,
            next_url=next_url,
            email=email,
            error="That email and password do not match a login.",
            status_code=401,
        )
    throttle.reset(email, ip)
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(response, new_session(now=now, user_id=user_id), settings)
    return response


@router.post("/logout", dependencies=[CsrfDep])
def logout(settings: SettingsDep) -> Response:
    """End the session in this browser."""
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response
