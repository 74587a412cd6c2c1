"""Pages for advisors: the board, one repair order, a customer's timeline, the inbox."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import CsrfDep, WebUser, WebUserDep
from app.conversations import inbox as conversations_inbox
from app.conversations.intents import LABELS
from app.conversations.models import Task
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import DatabaseDep, RowId
from app.web import inbox_actions, inbox_queries, queries
from app.web.admin_views import router as admin_router
from app.web.reports_views import router as reports_router
from app.web.templating import not_found, redirect, render
from app.web.timeline import customer_timeline

router = APIRouter(include_in_schema=False)
router.include_router(reports_router)
router.include_router(admin_router)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# Served by name from a fixed list: no path from the URL ever reaches the file system.
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "pitwall.css": "text/css",
}
BOARD_POLL_SECONDS = 3


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The vendored htmx and the stylesheet (no CDN: the demo works offline)."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return FileResponse(
        STATIC_DIR / name, media_type=media_type, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/")
def home(user: WebUserDep) -> RedirectResponse:
    return RedirectResponse("/board", status_code=303)


def _pick_rooftop(rooftops: list[Rooftop], slug: str | None) -> Rooftop | None:
    if slug is None:
        return rooftops[0] if rooftops else None
    return next((r for r in rooftops if r.slug == slug), None)


@router.get("/board", response_class=HTMLResponse)
def board(
    request: Request, user: WebUserDep, database: DatabaseDep, rooftop: str | None = None
) -> Response:
    """Today's repair orders at one rooftop; the table refreshes itself."""
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        current = _pick_rooftop(rooftops, rooftop)
        if current is None and rooftop is not None:
            return not_found(request, user)
        rows = queries.board_rows(session, rooftop=current, now=utcnow()) if current else []
        context = {
            "title": f"Board · {current.name}" if current else "Board",
            "nav": "board",
            "rooftops": rooftops,
            "rooftop": current,
            "rows": rows,
            "now": utcnow(),
            "poll_seconds": BOARD_POLL_SECONDS,
        }
        return render(request, "web/board.html", context, user=user)


@router.get("/board/rows", response_class=HTMLResponse)
def board_rows(request: Request, user: WebUserDep, database: DatabaseDep, rooftop: str) -> Response:
    """The board's table body alone, for htmx polling."""
    with database.transaction() as session:
        current = _pick_rooftop(
            queries.visible_rooftops(session, principal=user.principal), rooftop
        )
        if current is None:
            return not_found(request, user)
        rows = queries.board_rows(session, rooftop=current, now=utcnow())
        context = {"rooftop": current, "rows": rows, "now": utcnow()}
        return render(request, "web/_board_rows.html", context, user=user)


@router.get("/repair-orders/{ro_id}", response_class=HTMLResponse)
def repair_order(
    request: Request, ro_id: RowId, user: WebUserDep, database: DatabaseDep
) -> Response:
    """One RO: lines, stage history, and the messages about it."""
    with database.transaction() as session:
        ro = queries.visible_repair_order(session, principal=user.principal, ro_id=ro_id)
        if ro is None:
            return not_found(request, user)
        rooftop = session.get_one(Rooftop, ro.rooftop_id)
        rows = [
            r
            for r in queries.board_rows(session, rooftop=rooftop, now=utcnow())
            if r.ro_id == ro.id
        ]
        context = {
            "title": f"RO {ro.ro_number}",
            "nav": "board",
            "ro": ro,
            "rooftop": rooftop,
            "row": rows[0] if rows else None,
            "events": queries.ro_events(session, ro_ids=[ro.id]),
        }
        return render(request, "web/repair_order.html", context, user=user)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer(
    request: Request, customer_id: RowId, user: WebUserDep, database: DatabaseDep
) -> Response:
    """Every message, call, stage change and consent change for one customer, newest first."""
    with database.transaction() as session:
        try:
            found = conversations_inbox.visible_customer(
                session, principal=user.principal, customer_id=customer_id
            )
        except conversations_inbox.NotFound:
            return not_found(request, user)
        entries = customer_timeline(session, group_id=user.group_id, customer_id=found.id)
        context = {
            "title": found.display_name,
            "nav": "inbox",
            "customer": found,
            "entries": entries,
            "phones": queries.customer_phones(session, customer_id=found.id),
            "repair_orders": queries.customer_repair_orders(
                session, principal=user.principal, customer_id=found.id
            ),
        }
        return render(request, "web/customer.html", context, user=user)


# What the inbox says after an action, by the `done` query parameter of its redirect.
_NOTICES = {
    "reply": "Reply queued: it goes out within a minute; its delivery shows on the timeline.",
    "intent": "Thanks: the correction is kept and teaches the next model.",
}


def _inbox_context(
    user: WebUser, database: DatabaseDep, notice: str | None = None
) -> dict[str, object]:
    with database.transaction() as session:
        rooftops = queries.visible_rooftops(session, principal=user.principal)
        items = inbox_queries.inbox_items(session, rooftops=rooftops, now=utcnow())
        return {
            "items": items,
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
