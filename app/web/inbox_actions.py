"""Inbox actions: the same service functions the JSON API calls (app.conversations)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.auth.service import Principal
from app.conversations import inbox
from app.conversations.models import Task
from app.conversations.tasks import finish, take
from app.web.inbox_queries import card_tasks


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
    """Close the card: every open task of the conversation (one caller, one card)."""
    for each in card_tasks(session, task=task):
        finish(each, now=now)


def take_task(session: Session, *, task: Task, principal: Principal, now: datetime) -> None:
    """Take the card: its every open task is this user's now."""
    for each in card_tasks(session, task=task):
        take(each, user_id=principal.user_id, now=now)


def correct(session: Session, *, task: Task, intent: str, corrected_by: str, now: datetime) -> None:
    """One click: what the customer's text really meant, kept to grow the corpus."""
    try:
        inbox.correct_intent(session, task=task, intent=intent, corrected_by=corrected_by, now=now)
    except ValueError as exc:
        raise ActionRefused(str(exc)) from None
