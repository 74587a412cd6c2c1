"""Inbox actions: the same service functions the JSON API calls (app.conversations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.conversations import inbox
from app.conversations.models import Task
from app.conversations.tasks import finish, take


class ActionRefused(ValueError):
    """The action cannot be done (e.g. no phone to reply to); the message says why."""


def reply(
    session: Session, *, task: Task, principal: Principal, body: str, request_id: str, now: datetime
) -> None:
    """Queue the advisor's reply in the outbox; a resubmitted form (same request id) sends once."""
    try:
        inbox.reply(
            session, task=task, body=body, principal=principal, request_id=request_id, now=now
        )
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None


def done(session: Session, *, task: Task, principal: Principal, now: datetime) -> None:
    finish(task, now=now)


def take_task(session: Session, *, task: Task, principal: Principal, now: datetime) -> None:
    take(task, user_id=principal.user_id, now=now)


def correct(session: Session, *, task: Task, intent: str, corrected_by: str, now: datetime) -> None:
    """One click: what the customer's text really meant, kept to grow the corpus."""
    try:
        inbox.correct_intent(session, task=task, intent=intent, corrected_by=corrected_by, now=now)
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None
