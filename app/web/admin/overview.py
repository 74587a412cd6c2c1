"""The admin home: rooftops and poll health, unmapped statuses, the DMS quarantine,
users, sessions, tokens and the latest changes, each a section with its own anchor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.auth.audit import recent_changes
from app.auth.deps import WebUser, WebUserDep, require_role
from app.auth.service import tokens_of_group, users_of_group
from app.auth.sessions import open_sessions
from app.db import utcnow
from app.deps import DatabaseDep, SettingsDep
from app.repair_orders.models import DmsPollState, QuarantinedRecord, UnmappedStatus
from app.web import queries
from app.web.admin.common import admin_page, shown_settings

router = APIRouter(include_in_schema=False)
ROLES = ("advisor", "director", "admin")


def admin_context(database: DatabaseDep, user: WebUser) -> dict[str, Any]:
    """Everything the admin home shows."""
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        ids = [r.id for r in rooftops]
        return {
            "title": "Admin",
            "rooftops": rooftops,
            "zone": rooftops[0].timezone if rooftops else "UTC",
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
            "changes": recent_changes(session, group_id=user.group_id, limit=20),
            "roles": ROLES,
        }


def home(
    request: Request,
    user: WebUser,
    database: DatabaseDep,
    settings: SettingsDep,
    *,
    error: str | None = None,
) -> Response:
    """The admin home, with what to fix when a form on it was refused (then 422)."""
    return admin_page(
        request, user, settings, "web/admin.html", admin_context(database, user), error=error
    )


@router.get("/admin", response_class=HTMLResponse)
def admin(
    request: Request, user: WebUserDep, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Everything an admin configures or watches, on one page with a table of contents."""
    require_role(user, "admin")
    return home(request, user, database, settings)


@router.get("/admin/changes", response_class=HTMLResponse)
def changes(
    request: Request, user: WebUserDep, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """The audit log: every change made in the admin pages, newest first."""
    require_role(user, "admin")
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        found = recent_changes(session, group_id=user.group_id, limit=500)
    context = {
        "title": "Changes",
        "changes": found,
        "zone": rooftops[0].timezone if rooftops else "UTC",
    }
    return admin_page(request, user, settings, "web/admin_changes.html", context)
