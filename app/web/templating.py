"""Jinja2 for the pages (autoescape always on) and the helpers every page uses."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.auth.deps import WebUser
from app.db import utcnow

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def money(cents: int | None) -> str:
    """Integer cents as dollars: 41200 -> $412.00."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def local_time(moment: datetime | None, zone: str | ZoneInfo, fmt: str = "%-I:%M %p") -> str:
    """A UTC time shown on the rooftop's wall clock."""
    if moment is None:
        return "—"
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    return moment.astimezone(tz).strftime(fmt)


def day_time(moment: datetime | None, zone: str, now: datetime) -> str:
    """4:30 PM today, Nov 24, 4:30 PM on another day (on the rooftop's wall clock)."""
    if moment is None:
        return "—"
    tz = ZoneInfo(zone)
    same_day = moment.astimezone(tz).date() == now.astimezone(tz).date()
    return local_time(moment, tz, "%-I:%M %p" if same_day else "%b %-d, %-I:%M %p")


def waited(since: datetime | None, now: datetime | None = None) -> str:
    """How long something has waited: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if since is None:
        return "—"
    delta = (now or utcnow()) - since
    if delta < timedelta(minutes=1):
        return f"{max(int(delta.total_seconds()), 0)} s"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f}%"


def label(value: str | None) -> str:
    """snake_case codes as words: awaiting_approval -> awaiting approval."""
    return (value or "").replace("_", " ")


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=True,  # every page, every fragment: customer text is hostile input
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    money=money,
    local_time=local_time,
    day_time=day_time,
    waited=waited,
    percent=percent,
    label=label,
)
templates = Jinja2Templates(env=_env)


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    user: WebUser | None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page or fragment for `user` (with their session's CSRF token)."""
    full = {
        "user": user,
        "nav": "",
        "csrf": user.csrf if user else context.get("csrf", ""),
        **context,
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)


def redirect(request: Request, url: str) -> RedirectResponse:
    """303 after a POST (so a reload does not post twice)."""
    return RedirectResponse(url, status_code=303)


ERROR_PAGES = {
    403: ("Not allowed", "This page cannot do that for you. Reload the page and try again."),
    404: ("Not found", "There is nothing here, or it belongs to a rooftop you do not work at."),
    500: ("Something went wrong", "Pitwall could not show this page. Try again in a minute; "
          "if it keeps happening, tell your Pitwall admin the time it happened."),
}  # fmt: skip


def error_page(
    request: Request, status_code: int, *, user: WebUser | None, detail: str | None = None
) -> HTMLResponse:
    """The HTML page for a 403, 404 or 500 (any other code is shown like a 500)."""
    # 405 (say, GET /logout typed into the address bar) reads like a page that is not there.
    heading, text = ERROR_PAGES.get(404 if status_code == 405 else status_code, ERROR_PAGES[500])
    context = {"title": heading, "heading": heading, "text": detail or text, "status": status_code}
    return render(request, "web/error.html", context, user=user, status_code=status_code)


def not_found(request: Request, user: WebUser | None) -> HTMLResponse:
    """What one may not see looks exactly like what does not exist."""
    return error_page(request, 404, user=user)
