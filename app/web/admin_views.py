"""Admin pages: rooftops and settings, status maps, the DMS quarantine, poll health,
message template preview, users and API tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.auth.deps import CsrfDep, WebUser, WebUserDep, require_role
from app.auth.models import User
from app.auth.service import (
    UserError,
    create_api_token,
    create_user,
    deactivate_user,
    revoke_token,
    set_password,
    tokens_of_group,
    users_of_group,
)
from app.auth.sessions import open_sessions, revoke_group_session
from app.db import utcnow
from app.deps import DatabaseDep, RowId
from app.repair_orders.models import DmsPollState, QuarantinedRecord, UnmappedStatus
from app.web import queries
from app.web.templating import not_found, redirect, render

router = APIRouter(include_in_schema=False)

SAMPLE_CONTEXT: dict[str, Any] = {
    "first_name": "Sam",
    "vehicle": "2021 Toyota RAV4",
    "ro_number": "R1001",
    "promised_time": "4:30 PM",
    "promised": "4:30 PM",
    "advisor_name": "Dana Ruiz",
    "stage_words": "in repair",
    "waiting_on": "approval",
    "total": 41200,
    "items": [{"description": "Front brake pads", "amount": "$412.00"}],
    "lines": "Front brake pads",
    "choices": ["Reply 1 for Sam", "Reply 2 for Alex"],
    "store_hours": "Mon-Fri 7:00-18:00",
}


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


def _admin_context(database: DatabaseDep, user: WebUser) -> dict[str, Any]:
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        ids = [r.id for r in rooftops]
        return {
            "rooftops": rooftops,
            "shown_settings": {r.id: shown_settings(r.config) for r in rooftops},
            "unmapped": list(
                session.scalars(
                    select(UnmappedStatus)
                    .where(UnmappedStatus.rooftop_id.in_(ids))
                    .order_by(UnmappedStatus.last_seen_at.desc())
                )
            ),
            "quarantine": list(
                session.scalars(
                    select(QuarantinedRecord)
                    .where(
                        QuarantinedRecord.rooftop_id.in_(ids),
                        QuarantinedRecord.resolved_at.is_(None),
                    )
                    .order_by(QuarantinedRecord.received_at.desc())
                    .limit(50)
                )
            ),
            "polls": {
                p.rooftop_id: p
                for p in session.scalars(
                    select(DmsPollState).where(DmsPollState.rooftop_id.in_(ids))
                )
            },
            "users": users_of_group(session, group_id=user.group_id),
            "tokens": tokens_of_group(session, group_id=user.group_id),
            "sessions": open_sessions(session, group_id=user.group_id, now=utcnow()),
            "roles": ("advisor", "director", "admin"),
        }


def _admin_page(
    request: Request,
    user: WebUser,
    database: DatabaseDep,
    *,
    notice: str | None = None,
    error: str | None = None,
    new_token: str | None = None,
) -> HTMLResponse:
    """The admin page, with what just happened (or what to fix: then 422)."""
    context = {
        "title": "Admin",
        "nav": "admin",
        "notice": notice,
        "error": error,
        "new_token": new_token,
        **_admin_context(database, user),
    }
    return render(request, "web/admin.html", context, user=user, status_code=422 if error else 200)


@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request, user: WebUserDep, database: DatabaseDep) -> Response:
    """Everything an admin configures or watches, on one page with a table of contents."""
    require_role(user, "admin")
    return _admin_page(request, user, database)


@router.post("/admin/users", response_class=HTMLResponse, dependencies=[CsrfDep])
def add_user(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=20)],
    rooftop: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create a login; a mistake re-shows the page with what to fix."""
    require_role(user, "admin")
    error = notice = None
    with database.transaction() as session:
        rooftops = [
            r
            for r in queries.visible_rooftops(session, principal=user.principal)
            if r.slug in set(rooftop or [])
        ]
        try:
            created = create_user(
                session,
                group_id=user.group_id,
                email=email,
                password=password,
                role=role,
                rooftops=rooftops,
            )
            notice = f"Created {created.email} ({created.role})."
        except UserError as exc:
            error = str(exc)
            session.rollback()
    return _admin_page(request, user, database, notice=notice, error=error)


@router.post("/admin/users/{user_id}/deactivate", dependencies=[CsrfDep])
def deactivate(
    request: Request, user_id: RowId, user: WebUserDep, database: DatabaseDep
) -> Response:
    """Stop a login; every browser it is logged in on is logged out at its next click."""
    require_role(user, "admin")
    if user_id == user.user_id:
        return _admin_page(request, user, database, error="you cannot deactivate your own login")
    with database.transaction() as session:
        if not deactivate_user(session, group_id=user.group_id, user_id=user_id, now=utcnow()):
            return not_found(request, user)
    return redirect(request, "/admin#users")


@router.post("/admin/users/password", response_class=HTMLResponse, dependencies=[CsrfDep])
def new_password(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    user_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    """Set a user's password and log them out everywhere (a lost tablet, a leaked password)."""
    require_role(user, "admin")
    with database.transaction() as session:
        target = session.get(User, user_id)
        if target is None or target.group_id != user.group_id or not target.active:
            return not_found(request, user)
        try:
            ended = set_password(session, user=target, password=password, now=utcnow())
        except UserError as exc:
            session.rollback()
            return _admin_page(request, user, database, error=str(exc))
        email = target.email
    if user_id == user.user_id:
        return redirect(request, "/login")  # their own session just ended too
    notice = f"New password set for {email}; {ended} session(s) ended."
    return _admin_page(request, user, database, notice=notice)


@router.post("/admin/sessions/{session_id}/revoke", dependencies=[CsrfDep])
def end_session(
    request: Request, session_id: RowId, user: WebUserDep, database: DatabaseDep
) -> Response:
    """Log one browser out (say, a tablet left at the drive)."""
    require_role(user, "admin")
    with database.transaction() as session:
        if not revoke_group_session(
            session, group_id=user.group_id, session_id=session_id, now=utcnow()
        ):
            return not_found(request, user)
    return redirect(request, "/admin#sessions")


@router.post("/admin/tokens", response_class=HTMLResponse, dependencies=[CsrfDep])
def add_token(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    role: Annotated[str, Form(max_length=20)],
    rooftop: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create an API token and show it once."""
    require_role(user, "admin")
    error = token = None
    with database.transaction() as session:
        rooftops = [
            r
            for r in queries.visible_rooftops(session, principal=user.principal)
            if r.slug in set(rooftop or [])
        ]
        if role == "advisor" and not rooftops:
            error = "an advisor token needs at least one rooftop"
        else:
            try:
                token = create_api_token(
                    session,
                    group_id=user.group_id,
                    name=name,
                    role=role,
                    rooftops=rooftops if role == "advisor" else [],
                )
            except ValueError as exc:
                error = str(exc)
    notice = f"Token {name!r} created. Copy it now: it is not shown again." if token else None
    return _admin_page(request, user, database, notice=notice, error=error, new_token=token)


@router.post("/admin/tokens/{token_id}/revoke", dependencies=[CsrfDep])
def revoke(request: Request, token_id: RowId, user: WebUserDep, database: DatabaseDep) -> Response:
    require_role(user, "admin")
    with database.transaction() as session:
        if not revoke_token(session, group_id=user.group_id, token_id=token_id):
            return not_found(request, user)
    return redirect(request, "/admin#tokens")


@router.get("/admin/templates", response_class=HTMLResponse)
def template_preview(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    rooftop: str | None = None,
    kind: str = "ready_for_pickup",
    language: str = "en",
) -> Response:
    """A message template as a customer would read it, with this rooftop's overrides."""
    require_role(user, "admin")
    from app.messaging import templates as message_templates

    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
    chosen = next((r for r in rooftops if r.slug == rooftop), rooftops[0] if rooftops else None)
    if chosen is None or kind not in message_templates.available_kinds():
        return not_found(request, user)
    settings = chosen.settings
    sample = {
        **SAMPLE_CONTEXT,
        "rooftop": chosen.name,
        "rooftop_name": chosen.name,
        "store_phone": settings.service_desk or "",
        "store_hours": settings.store_hours,
    }
    body = error = None
    segments: tuple[int, str] | None = None
    try:
        body = message_templates.render(
            kind, language=language, context=sample, overrides=settings.templates
        )
        segments = message_templates.segments(body)
    except Exception as exc:  # a dealer's override may be broken: show why, do not 500
        error = f"{type(exc).__name__}: {exc}"
    context = {
        "title": "Template preview",
        "nav": "admin",
        "rooftops": rooftops,
        "rooftop": chosen,
        "kinds": message_templates.available_kinds(),
        "kind": kind,
        "language": language,
        "languages": ("en", "es", "fr"),
        "body": body,
        "segments": segments,
        "error": error,
        "rendered_at": datetime.now(UTC),
    }
    return render(request, "web/template_preview.html", context, user=user)
