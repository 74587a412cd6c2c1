"""A rooftop's settings page: status map and store hours, edited in the app and audited.

Each form posts, and a good change redirects back (post-redirect-get); a refused one
re-shows the page with what to fix and what was typed. `pitwall config export` writes
the result back out as TOML.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.auth.deps import CsrfDep, WebUser, WebUserDep
from app.config import STAGES, ConfigError, RooftopConfig
from app.conversations.texts import parse_store_hours, spoken_hours
from app.db import utcnow
from app.dealers.edits import change_rooftop_setting
from app.dealers.models import Rooftop
from app.deps import DatabaseDep, SettingsDep
from app.repair_orders.models import UnmappedStatus
from app.web.admin.common import admin_page, admin_rooftop
from app.web.admin.flash import redirect_with
from app.web.templating import not_found

router = APIRouter(include_in_schema=False)
REMOVE = ""  # the stage a row is given to drop it from the map
NEW_ROWS = 3
HAS_HOLIDAYS = "holidays" in RooftopConfig.model_fields  # added by the store-holidays work


def _context(database: DatabaseDep, rooftop: Rooftop, **typed: Any) -> dict[str, Any]:
    with database.transaction() as session:
        unmapped = [
            u.raw_status
            for u in session.scalars(
                select(UnmappedStatus)
                .where(UnmappedStatus.rooftop_id == rooftop.id)
                .order_by(UnmappedStatus.last_seen_at.desc())
            )
            if u.raw_status not in rooftop.settings.status_map
        ]
    settings = rooftop.settings
    try:
        hours = {lang: spoken_hours(parse_store_hours(settings.store_hours), lang)
                 for lang in ("en", "es", "fr")}  # fmt: skip
    except ValueError:
        hours = {}
    return {
        "title": f"Settings of {rooftop.name}",
        "rooftop": rooftop,
        "status_map": sorted(settings.status_map.items()),
        "unmapped": unmapped,
        "new_rows": NEW_ROWS,
        "stages": STAGES,
        "store_hours": typed.get("store_hours", settings.store_hours),
        "hours_read": hours,
        "has_holidays": HAS_HOLIDAYS,
        "holidays": typed.get(
            "holidays", "\n".join(str(d) for d in getattr(settings, "holidays", []) or [])
        ),
        "overrides": sorted(settings.templates.items()),
    }


@router.get("/admin/rooftops/{slug}", response_class=HTMLResponse)
def rooftop_settings(
    request: Request, slug: str, user: WebUserDep, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """What an admin may change about a rooftop without editing the dealer file."""
    rooftop = admin_rooftop(database, user, slug)
    if rooftop is None:
        return not_found(request, user)
    context = _context(database, rooftop)
    return admin_page(request, user, settings, "web/admin_rooftop.html", context)


def _save(
    request: Request,
    user: WebUser,
    database: DatabaseDep,
    settings: SettingsDep,
    slug: str,
    changes: dict[str, Any],
    typed: dict[str, Any],
) -> Response:
    rooftop = admin_rooftop(database, user, slug)
    if rooftop is None:
        return not_found(request, user)
    changed: list[str] = []
    message = None
    with database.transaction() as session:
        target = session.get_one(Rooftop, rooftop.id)
        try:
            for key, value in changes.items():
                if change_rooftop_setting(
                    session, rooftop=target, key=key, value=value, actor=user.email, now=utcnow()
                ):
                    changed.append(key.replace("_", " "))
        except ConfigError as exc:
            session.rollback()
            message = f"Not saved: {exc.key}: {exc.problem}"
    if message is not None:  # drawn after the transaction (SQLite: one writer)
        context = _context(database, rooftop, **typed)
        return admin_page(request, user, settings, "web/admin_rooftop.html", context, error=message)
    notice = f"Saved the {' and '.join(changed)} of {rooftop.name}." if changed else "No change."
    return redirect_with(f"/admin/rooftops/{slug}", settings, notice=notice)  # notice on top


@router.post("/admin/rooftops/{slug}/status-map", dependencies=[CsrfDep])
def save_status_map(
    request: Request,
    slug: str,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    raw: Annotated[list[str] | None, Form()] = None,
    stage: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The whole map in one form: one row per raw status; a blank stage removes the row."""
    raws, stages = raw or [], stage or []
    if len(raws) != len(stages):
        return not_found(request, user)
    mapping: dict[str, str] = {}
    for raw_status, chosen in zip(raws, stages, strict=True):
        raw_status = raw_status.strip()
        if raw_status and chosen != REMOVE:
            mapping[raw_status] = chosen
    return _save(request, user, database, settings, slug, {"status_map": mapping}, {})


@router.post("/admin/rooftops/{slug}/store-hours", dependencies=[CsrfDep])
def save_store_hours(
    request: Request,
    slug: str,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    store_hours: Annotated[str, Form(max_length=300)] = "",
    holidays: Annotated[str | None, Form(max_length=4000)] = None,
) -> Response:
    """Opening hours (the voice menu, acknowledgements), and holidays when supported."""
    # Whose rooftop it is comes first: another group's is "not found", whatever the form.
    if admin_rooftop(database, user, slug) is None:
        return not_found(request, user)
    typed = {"store_hours": store_hours, "holidays": holidays or ""}
    store_hours = " ".join(store_hours.split())
    try:
        parse_store_hours(store_hours)
    except ValueError as exc:
        rooftop = admin_rooftop(database, user, slug)
        if rooftop is None:
            return not_found(request, user)
        context = _context(database, rooftop, **typed)
        return admin_page(
            request, user, settings, "web/admin_rooftop.html", context, error=f"Not saved: {exc}"
        )
    changes: dict[str, Any] = {"store_hours": store_hours}
    if HAS_HOLIDAYS and holidays is not None:
        changes["holidays"] = [d.strip() for d in holidays.replace(",", "\n").splitlines()
                               if d.strip()]  # fmt: skip
    return _save(request, user, database, settings, slug, changes, typed)
