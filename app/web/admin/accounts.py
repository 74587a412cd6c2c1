"""Admin forms for logins, browser sessions and API tokens (post-redirect-get, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.auth.audit import record_change
from app.auth.deps import CsrfDep, WebUser, WebUserDep, require_role
from app.auth.models import User
from app.auth.service import (
    UserError,
    create_api_token,
    create_user,
    deactivate_user,
    revoke_token,
    set_password,
    update_profile,
)
from app.auth.sessions import revoke_group_session
from app.db import utcnow
from app.deps import DatabaseDep, RowId, SettingsDep
from app.web import queries
from app.web.admin.flash import redirect_with
from app.web.admin.overview import home
from app.web.templating import not_found, redirect

router = APIRouter(include_in_schema=False)
OptionalText = Annotated[str | None, Form(max_length=200)]


def _profile(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "name": user.name,
        "dms_advisor_id": user.dms_advisor_id,
        "role": user.role,
        "rooftops": sorted(r.slug for r in user.rooftops),
        "active": user.active,
    }


@router.post("/admin/users", response_class=HTMLResponse, dependencies=[CsrfDep])
def add_user(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    role: Annotated[str, Form(max_length=20)],
    rooftop: Annotated[list[str] | None, Form()] = None,
    name: OptionalText = None,
    dms_advisor_id: OptionalText = None,
) -> Response:
    """Create a login; a mistake re-shows the page with what to fix."""
    require_role(user, "admin")
    error = None
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
                name=name,
                dms_advisor_id=dms_advisor_id,
            )
        except UserError as exc:
            session.rollback()
            error = _form_error(exc, role)
        else:
            _audit(session, actor=user, target=created, before=None)
            notice = f"Created {created.display_name} ({created.role})."
    if error is not None:  # the page is drawn after the transaction (SQLite: one writer)
        return home(request, user, database, settings, error=error)
    return redirect_with("/admin", settings, notice=notice)


def _audit(
    session: Session, *, actor: WebUser, target: User, before: dict[str, object] | None
) -> None:
    """The admin-change row for a login created (no `before`) or edited."""
    record_change(
        session,
        group_id=actor.group_id,
        actor=actor.email,
        subject=f"user {target.email}",
        old=before,
        new=_profile(target),
        at=utcnow(),
    )


def _form_error(exc: UserError, role: str) -> str:
    if role == "advisor" and "at least one rooftop" in str(exc):
        return "An advisor needs at least one rooftop: tick the rooftops they work at."
    return str(exc)


@router.post("/admin/users/{user_id}/profile", dependencies=[CsrfDep])
def edit_profile(
    request: Request,
    user_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    name: OptionalText = None,
    dms_advisor_id: OptionalText = None,
) -> Response:
    """A login's name (what colleagues read) and its advisor id in the DMS."""
    require_role(user, "admin")
    error = None
    with database.transaction() as session:
        target = session.get(User, user_id)
        if target is None or target.group_id != user.group_id:
            return not_found(request, user)
        before = _profile(target)
        try:
            update_profile(session, user=target, name=name, dms_advisor_id=dms_advisor_id)
        except UserError as exc:
            session.rollback()
            error = str(exc)
        else:
            _audit(session, actor=user, target=target, before=before)
            notice = f"Saved {target.display_name}."
    if error is not None:
        return home(request, user, database, settings, error=error)
    return redirect_with("/admin", settings, notice=notice)


@router.post("/admin/users/{user_id}/deactivate", dependencies=[CsrfDep])
def deactivate(
    request: Request,
    user_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    """Stop a login; every browser it is logged in on is logged out at its next click."""
    require_role(user, "admin")
    if user_id == user.user_id:
        return home(request, user, database, settings, error="you cannot deactivate your own login")
    with database.transaction() as session:
        if not deactivate_user(session, group_id=user.group_id, user_id=user_id, now=utcnow()):
            return not_found(request, user)
        target = session.get_one(User, user_id)
        record_change(
            session,
            group_id=user.group_id,
            actor=user.email,
            subject=f"user {target.email}",
            old="active",
            new="deactivated",
            at=utcnow(),
        )
        notice = f"Deactivated {target.display_name}; they are logged out everywhere."
    return redirect_with("/admin", settings, notice=notice)


@router.post("/admin/users/password", response_class=HTMLResponse, dependencies=[CsrfDep])
def new_password(
    request: Request,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
    user_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    """Set a user's password and log them out everywhere (a lost tablet, a leaked password)."""
    require_role(user, "admin")
    error = None
    with database.transaction() as session:
        target = session.get(User, user_id)
        if target is None or target.group_id != user.group_id or not target.active:
            return not_found(request, user)
        try:
            ended = set_password(session, user=target, password=password, now=utcnow())
        except UserError as exc:
            session.rollback()
            error = str(exc)
        else:
            record_change(
                session,
                group_id=user.group_id,
                actor=user.email,
                subject=f"user {target.email}: password",
                old="(set)",
                new="(set anew)",
                at=utcnow(),
            )
            name = target.display_name
    if error is not None:
        return home(request, user, database, settings, error=error)
    if user_id == user.user_id:
        return redirect(request, "/login")  # their own session just ended too
    notice = f"New password set for {name}; {ended} session(s) ended."
    return redirect_with("/admin", settings, notice=notice)


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
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    role: Annotated[str, Form(max_length=20)],
    rooftop: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Create an API token; the page it redirects to shows it once."""
    require_role(user, "admin")
    error = token = None
    with database.transaction() as session:
        rooftops = [
            r
            for r in queries.visible_rooftops(session, principal=user.principal)
            if r.slug in set(rooftop or [])
        ]
        if role == "advisor" and not rooftops:
            error = "An advisor token needs at least one rooftop: tick the rooftops it may read."
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
                session.rollback()
                error = str(exc)
        if token is not None:
            record_change(
                session,
                group_id=user.group_id,
                actor=user.email,
                subject=f"API token {name!r}",
                old=None,
                new={"role": role, "rooftops": sorted(r.slug for r in rooftops)},
                at=utcnow(),
            )
    if error is not None or token is None:
        return home(request, user, database, settings, error=error or "no token was created")
    notice = f"Token {name!r} created. Copy it now: it is not shown again."
    return redirect_with("/admin", settings, notice=notice, new_token=token)


@router.post("/admin/tokens/{token_id}/revoke", dependencies=[CsrfDep])
def revoke(
    request: Request,
    token_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    require_role(user, "admin")
    with database.transaction() as session:
        if not revoke_token(session, group_id=user.group_id, token_id=token_id):
            return not_found(request, user)
        record_change(
            session,
            group_id=user.group_id,
            actor=user.email,
            subject=f"API token #{token_id}",
            old="active",
            new="revoked",
            at=utcnow(),
        )
    return redirect_with("/admin", settings, notice="Token revoked.")
