"""Twilio webhooks for texts and calls, and the advisor inbox API.

Webhooks: signature checked first (403, nothing written), then one transaction that
stores and answers. API: every route needs a principal and sees only its group's
(and, for advisors, its rooftops') data; anything else is 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from app.auth.deps import ApiPrincipalDep
from app.conversations import inbox, twiml, voice
from app.conversations.inbox import NotFound
from app.conversations.reports import conversations_report
from app.conversations.schemas import Inbox, InboxTask, ReplyIn, ReplyOut, TaskOut, Timeline
from app.conversations.service import MalformedWebhook, first_answer, receive_message
from app.conversations.storing import AlreadyReceived
from app.conversations.tasks import finish, take
from app.customers.models import Customer
from app.db import utcnow
from app.deps import (
    Database,
    DatabaseDep,
    RowId,
    TwilioForm,
    TwilioFormDep,
    in_webhook_thread,
    signed_twilio_form,
)

log = logging.getLogger(__name__)
router = APIRouter()

TWIML = "text/xml"


def _twiml(body: str) -> Response:
    return Response(content=body, media_type=TWIML)


def _bad_webhook(exc: MalformedWebhook) -> HTTPException:
    log.warning("rejected Twilio webhook: %s", exc)
    return HTTPException(status_code=400, detail=str(exc))


@router.post("/webhooks/twilio/messages", tags=["webhooks"])
async def inbound_message(request: Request) -> Response:
    """Inbound SMS/WhatsApp: stored under its MessageSid, answered once as TwiML `<Message>`.

    The signed form and the database are read here, not declared as dependencies: every
    text comes through this route, and FastAPI's solving of them cost about half as much
    CPU as reading and checking the signed form itself.
    """
    form = await signed_twilio_form(request, request.app.state.settings)
    database: Database = request.app.state.database
    reply = await in_webhook_thread(request, _receive_message, database, form)
    return _twiml(twiml.message_response(reply))


def _receive_message(database: Database, form: TwilioForm) -> str | None:
    try:
        with database.transaction() as session:
            return receive_message(session, form=form.fields, now=utcnow())
    except MalformedWebhook as exc:
        raise _bad_webhook(exc) from None
    except AlreadyReceived as exc:  # a retry: this attempt rolled back, the first answer stands
        with database.transaction() as session:
            return first_answer(session, sid=exc.sid)


@router.post("/webhooks/twilio/voice", tags=["webhooks"])
async def inbound_call(
    request: Request,
    form: TwilioFormDep,
    database: DatabaseDep,
    step: Annotated[str | None, Query()] = None,
) -> Response:
    """An inbound call (`step` absent) or the caller's menu choice (`step=menu`)."""
    answer = voice.menu_choice if step == "menu" else voice.answer_call
    return _twiml(await in_webhook_thread(request, _call_step, database, form, answer))


@router.post("/webhooks/twilio/voice/dial-status", tags=["webhooks"])
async def dial_status(request: Request, form: TwilioFormDep, database: DatabaseDep) -> Response:
    """The `<Dial action>` result; a missed call gets one text-back and one callback task."""
    return _twiml(await in_webhook_thread(request, _call_step, database, form, voice.dial_finished))


def _call_step(database: Database, form: TwilioForm, step: Callable[..., str]) -> str:
    try:
        with database.transaction() as session:
            return step(session, form=form.fields, now=utcnow())
    except MalformedWebhook as exc:
        raise _bad_webhook(exc) from None


def _not_found(exc: NotFound) -> HTTPException:
    return HTTPException(status_code=404, detail=str(exc))


@router.get("/api/v1/inbox", response_model=Inbox, tags=["inbox"])
def get_inbox(
    principal: ApiPrincipalDep, database: DatabaseDep, rooftop: Annotated[str, Query()]
) -> Inbox:
    """Open tasks of a rooftop, the longest-waiting first, with how long each has waited."""
    now = utcnow()
    with database.transaction() as session:
        try:
            found = inbox.visible_rooftop(session, principal=principal, slug=rooftop)
        except NotFound as exc:
            raise _not_found(exc) from None
        tasks = []
        for task in inbox.open_tasks(session, rooftop=found):
            customer = session.get(Customer, task.customer_id) if task.customer_id else None
            latest = inbox.last_message(session, task)
            tasks.append(
                InboxTask(
                    id=task.id,
                    kind=task.kind,
                    summary=task.summary,
                    customer_id=task.customer_id,
                    customer_name=customer.display_name if customer else None,
                    repair_order_id=task.repair_order_id,
                    advisor_ref=task.advisor_ref,
                    assigned_user_id=task.assigned_user_id,
                    created_at=task.created_at,
                    taken_at=task.taken_at,
                    waiting_seconds=int((now - task.created_at).total_seconds()),
                    last_message=latest.body if latest else None,
                    last_message_at=latest.received_at if latest else None,
                )
            )
        return Inbox(rooftop=found.slug, tasks=tasks)


@router.post("/api/v1/inbox/{task_id}/reply", response_model=ReplyOut, tags=["inbox"])
def reply_to_task(
    task_id: RowId, payload: ReplyIn, principal: ApiPrincipalDep, database: DatabaseDep
) -> ReplyOut:
    """Queue a reply to the customer through the outbox (sent by the dispatcher)."""
    with database.transaction() as session:
        try:
            task = inbox.visible_task(session, principal=principal, task_id=task_id)
            message = inbox.reply(
                session,
                task=task,
                body=payload.body,
                principal=principal,
                request_id=payload.request_id,
                now=utcnow(),
            )
        except NotFound as exc:
            raise _not_found(exc) from None
        except ValueError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return ReplyOut(
            message_id=message.id,
            state=message.state,
            dedupe_key=message.dedupe_key,
            channel=message.channel,
            task_state=task.state,
        )


def _task_out(task: Any) -> TaskOut:
    return TaskOut(
        id=task.id,
        state=task.state,
        assigned_user_id=task.assigned_user_id,
        taken_at=task.taken_at,
        done_at=task.done_at,
    )


@router.post("/api/v1/inbox/{task_id}/done", response_model=TaskOut, tags=["inbox"])
def task_done(task_id: RowId, principal: ApiPrincipalDep, database: DatabaseDep) -> TaskOut:
    """Close a task (closing it again changes nothing)."""
    with database.transaction() as session:
        try:
            task = inbox.visible_task(session, principal=principal, task_id=task_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        finish(task, now=utcnow())
        return _task_out(task)


@router.post("/api/v1/inbox/{task_id}/take", response_model=TaskOut, tags=["inbox"])
def task_take(task_id: RowId, principal: ApiPrincipalDep, database: DatabaseDep) -> TaskOut:
    """Take a task: it is the caller's (the signed-in user's, for a browser session)."""
    with database.transaction() as session:
        try:
            task = inbox.visible_task(session, principal=principal, task_id=task_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        take(task, user_id=principal.user_id, now=utcnow())
        return _task_out(task)


@router.get("/api/v1/customers/{customer_id}/timeline", response_model=Timeline, tags=["customers"])
def customer_timeline(
    customer_id: RowId, principal: ApiPrincipalDep, database: DatabaseDep
) -> Timeline:
    """Everything that happened with a customer across the group's rooftops, newest first."""
    with database.transaction() as session:
        try:
            customer = inbox.visible_customer(session, principal=principal, customer_id=customer_id)
        except NotFound as exc:
            raise _not_found(exc) from None
        return Timeline(
            customer_id=customer.id,
            name=customer.display_name,
            items=inbox.timeline(session, customer=customer),
        )


@router.get("/api/v1/reports/conversations", tags=["reports"])
def conversations(
    principal: ApiPrincipalDep,
    database: DatabaseDep,
    rooftop: Annotated[str, Query()],
    since: Annotated[date, Query(description="first local date, e.g. 2026-11-01")],
) -> dict[str, Any]:
    """Per day: status questions answered by text and voice, calls forwarded and missed,
    text-backs, callback times; plus replies waiting now. Headline: status_calls_deflected."""
    with database.transaction() as session:
        try:
            found = inbox.visible_rooftop(session, principal=principal, slug=rooftop)
        except NotFound as exc:
            raise _not_found(exc) from None
        return conversations_report(session, rooftop=found, since=since, now=utcnow())
