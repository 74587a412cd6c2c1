"""The inbox: one card per open conversation, the longest-waiting first; act on a card."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import CsrfDep, WebUser, WebUserDep
from app.auth.models import User
from app.conversations import inbox as conversations_inbox
from app.conversations.intents import LABELS
from app.conversations.models import Task
from app.db import utcnow
from app.deps import DatabaseDep, RowId
from app.web import inbox_actions, inbox_queries, queries
from app.web.compose import short_answers
from app.web.people import staff_name
from app.web.templating import not_found, redirect, render

router = APIRouter(include_in_schema=False)


# What the inbox says after an action, by the `done` query parameter of its redirect.
_NOTICES = {
    "reply": "Reply queued: it goes out within a minute; its delivery shows on the timeline.",
    "done": "Done: the card is closed.",
    "take": "Taken: the card is yours.",
    "intent": "Thanks: the correction is kept and teaches the next model.",
}


def _inbox_context(
    user: WebUser, database: DatabaseDep, notice: str | None = None
) -> dict[str, object]:
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        items = inbox_queries.inbox_items(session, rooftops=rooftops, now=utcnow())
        advisor = staff_name(session.get(User, user.user_id))
        quick = {
            item.task.id: short_answers(
                customer=item.customer, rooftop=item.rooftop, vehicle=item.vehicle, advisor=advisor
            )
            for item in items
        }
        return {
            "items": items,
            "quick": quick,
            "now": utcnow(),
            "request_id": uuid.uuid4().hex,
            "intent_labels": LABELS,
            "notice": notice,
        }


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, user: WebUserDep, database: DatabaseDep) -> Response:
    """Replies and missed calls that need a person, the longest-waiting first."""
    notice = _NOTICES.get(request.query_params.get("done", ""))
    context = {"title": "Inbox", "nav": "inbox", **_inbox_context(user, database, notice)}
    return render(request, "web/inbox.html", context, user=user)


@router.get("/inbox/items", response_class=HTMLResponse)
def inbox_list(request: Request, user: WebUserDep, database: DatabaseDep) -> Response:
    return render(request, "web/_inbox_items.html", _inbox_context(user, database), user=user)


@router.post("/inbox/tasks/{task_id}/reply", dependencies=[CsrfDep])
def reply(
    request: Request,
    task_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    body: Annotated[str, Form(min_length=1, max_length=1600)],
    request_id: Annotated[str, Form(min_length=8, max_length=64)],
) -> Response:
    """Text the customer back through the outbox (the dispatcher sends it, like any text)."""
    text = body.strip()
    if not text:
        raise HTTPException(status_code=422, detail="write a reply before sending")
    return _act(
        request,
        user,
        database,
        task_id,
        lambda session, task, now: inbox_actions.reply(
            session, task=task, principal=user.principal, body=text, request_id=request_id, now=now
        ),
        done="reply",
    )


@router.post("/inbox/tasks/{task_id}/done", dependencies=[CsrfDep])
def done(request: Request, task_id: RowId, user: WebUserDep, database: DatabaseDep) -> Response:
    """Close the task: nobody needs to do anything more."""
    return _act(
        request,
        user,
        database,
        task_id,
        lambda session, task, now: inbox_actions.done(
            session, task=task, principal=user.principal, now=now
        ),
        done="done",
    )


@router.post("/inbox/tasks/{task_id}/take", dependencies=[CsrfDep])
def take(request: Request, task_id: RowId, user: WebUserDep, database: DatabaseDep) -> Response:
    """Take the task: it is yours now (a callback, say)."""
    return _act(
        request,
        user,
        database,
        task_id,
        lambda session, task, now: inbox_actions.take_task(
            session, task=task, principal=user.principal, now=now
        ),
        done="take",
    )


@router.post("/inbox/tasks/{task_id}/intent", dependencies=[CsrfDep])
def correct_intent(
    request: Request,
    task_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    intent: Annotated[str, Form(max_length=20)] = "",
    intent_other: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """What the customer's text really meant, when Pitwall read it wrong (one click)."""
    return _act(
        request,
        user,
        database,
        task_id,
        lambda session, task, now: inbox_actions.correct(
            session, task=task, intent=intent or intent_other, corrected_by=user.email, now=now
        ),
        done="intent",
    )


def _act(
    request: Request,
    user: WebUser,
    database: DatabaseDep,
    task_id: RowId,
    action: Callable[[Session, Task, datetime], None],
    done: str | None = None,
) -> Response:
    with database.transaction() as session:
        try:
            task = conversations_inbox.visible_task(
                session, principal=user.principal, task_id=task_id
            )
        except conversations_inbox.NotFound:
            return not_found(request, user)
        try:
            action(session, task, utcnow())
        except inbox_actions.ActionRefused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
    if request.headers.get("HX-Request"):
        context = _inbox_context(user, database, _NOTICES.get(done or ""))
        return render(request, "web/_inbox_items.html", context, user=user)
    return redirect(request, f"/inbox?done={done}" if done else "/inbox")
