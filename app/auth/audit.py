"""The admin audit log: every change made in the admin pages (or by CLI), who, when, old, new."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import AdminChange


def as_text(value: Any) -> str | None:
    """A value as the log keeps it: strings as they are, anything else as sorted JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def record_change(
    session: Session,
    *,
    group_id: int,
    actor: str,
    subject: str,
    old: Any,
    new: Any,
    at: datetime,
) -> AdminChange | None:
    """Log one change; nothing when old and new are the same (a form saved unchanged)."""
    old_text, new_text = as_text(old), as_text(new)
    if old_text == new_text:
        return None
    change = AdminChange(
        group_id=group_id,
        actor=actor,
        at=at,
        subject=subject,
        old_value=old_text,
        new_value=new_text,
    )
    session.add(change)
    return change


def recent_changes(session: Session, *, group_id: int, limit: int = 50) -> list[AdminChange]:
    """The group's latest changes, newest first."""
    return list(
        session.scalars(
            select(AdminChange)
            .where(AdminChange.group_id == group_id)
            .order_by(AdminChange.at.desc(), AdminChange.id.desc())
            .limit(limit)
        )
    )
