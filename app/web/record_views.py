"""One repair order and one customer: the whole conversation, and a box to text them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import CsrfDep, WebUser, WebUserDep
from app.auth.models import User
from app.conversations import inbox as conversations_inbox
from app.customers.models import Customer
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import DatabaseDep, RowId
from app.messaging.channels import primary_phone
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder
from app.web import queries
from app.web.board import board
from app.web.compose import ComposeRefused, quick_replies, text_customer
from app.web.people import staff_name
from app.web.ro_history import history
from app.web.templating import not_found, redirect, render
from app.web.timeline import customer_timeline

router = APIRouter(include_in_schema=False)

# What the page says after the message box posted, by the `sent` query parameter.
SENT_NOTICE = "Text queued: it goes out within a minute; its delivery shows below."


def _compose_context(
    session: Session,
    user: WebUser,
    customer: Customer | None,
    rooftop: Rooftop,
    ro: RepairOrder | None,
) -> dict[str, object]:
    if customer is None:
        return {"compose": None}
    me = session.get(User, user.user_id)
    phone = primary_phone(session, customer_id=customer.id)
    return {
        "compose": {
            "customer": customer,
            "ro": ro,
            "rooftop": rooftop,
            "request_id": uuid.uuid4().hex,
            "to": phone.e164 if phone is not None else None,
            "quick_replies": quick_replies(
                session, customer=customer, rooftop=rooftop, ro=ro, advisor=staff_name(me)
            )
            if phone is not None
            else [],
        }
    }


def _sent_notice(
    session: Session, request: Request, customer: Customer | None
) -> dict[str, str | None]:
    """After the message box posted (`?sent=<message id>`): queued, or why it is held."""
    sent = request.query_params.get("sent", "")
    message = session.get(OutboundMessage, int(sent)) if sent.isdigit() else None
    if message is None or customer is None or message.customer_id != customer.id:
        return {"notice": None, "held": None}
    if message.state == "pending" and not message.suppressed_reason:
        return {"notice": SENT_NOTICE, "held": None}
    if message.state in ("pending", "suppressed", "expired", "failed", "undelivered"):
        verb = "Held" if message.state == "pending" else "Not sent"
        return {
            "notice": None,
            "held": f"{verb}: {message.suppressed_reason or message.error_message}",
        }
    return {"notice": "Text sent.", "held": None}


@router.get("/repair-orders/{ro_id}", response_class=HTMLResponse)
def repair_order(
    request: Request, ro_id: RowId, user: WebUserDep, database: DatabaseDep
) -> Response:
    """One RO: lines, what changed (old and new values), the conversation, a message box."""
    with database.transaction() as session:
        ro = queries.visible_repair_order(session, principal=user.principal, ro_id=ro_id)
        if ro is None:
            return not_found(request, user)
        rooftop = session.get_one(Rooftop, ro.rooftop_id)
        now = utcnow()
        shown = board(session, rooftop=rooftop, now=now).rows
        customer = session.get(Customer, ro.customer_id) if ro.customer_id else None
        if customer is not None and customer.erased_at is not None:
            customer = None
        entries = (
            customer_timeline(session, group_id=user.group_id, customer_id=customer.id, ro_id=ro.id)
            if customer
            else []
        )
        context = {
            "title": f"RO {ro.ro_number}",
            "nav": "board",
            "ro": ro,
            "rooftop": rooftop,
            "customer": customer,
            "row": next((r for r in shown if r.ro_id == ro.id), None),
            "history": history(queries.ro_events(session, ro_ids=[ro.id]), rooftop.settings.zone),
            "entries": entries,
            "action": f"/repair-orders/{ro.id}/texts",
            **_compose_context(session, user, customer, rooftop, ro),
            **_sent_notice(session, request, customer),
        }
        return render(request, "web/repair_order.html", context, user=user)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer(
    request: Request, customer_id: RowId, user: WebUserDep, database: DatabaseDep
) -> Response:
    """Every message both ways, call, stage change and consent change; a message box."""
    with database.transaction() as session:
        try:
            found = conversations_inbox.visible_customer(
                session, principal=user.principal, customer_id=customer_id
            )
        except conversations_inbox.NotFound:
            return not_found(request, user)
        repair_orders = queries.customer_repair_orders(
            session, principal=user.principal, customer_id=found.id
        )
        latest = repair_orders[0][0] if repair_orders else None
        rooftop = _texting_rooftop(session, user, latest)
        context = {
            "title": found.display_name,
            "nav": "inbox",
            "customer": found,
            "entries": customer_timeline(session, group_id=user.group_id, customer_id=found.id),
            "phones": queries.customer_phones(session, customer_id=found.id),
            "repair_orders": repair_orders,
            "action": f"/customers/{found.id}/texts",
            **(
                _compose_context(session, user, found, rooftop, latest)
                if rooftop
                else {"compose": None}
            ),
            **_sent_notice(session, request, found),
        }
        return render(request, "web/customer.html", context, user=user)


def _texting_rooftop(session: Session, user: WebUser, ro: RepairOrder | None) -> Rooftop | None:
    """The rooftop a text from the customer's page comes from: their latest RO's, else the
    user's first."""
    if ro is not None:
        return session.get(Rooftop, ro.rooftop_id)
    rooftops = queries.visible_rooftops(session, principal=user.principal)
    return rooftops[0] if rooftops else None


Body = Annotated[str, Form(max_length=1600)]
RequestId = Annotated[str, Form(min_length=8, max_length=64)]


@router.post("/customers/{customer_id}/texts", dependencies=[CsrfDep])
def text_from_customer_page(
    request: Request,
    customer_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    body: Body,
    request_id: RequestId,
) -> Response:
    """Text the customer from their page (from the rooftop of their latest RO)."""
    with database.transaction() as session:
        try:
            found = conversations_inbox.visible_customer(
                session, principal=user.principal, customer_id=customer_id
            )
        except conversations_inbox.NotFound:
            return not_found(request, user)
        repair_orders = queries.customer_repair_orders(
            session, principal=user.principal, customer_id=found.id
        )
        latest = repair_orders[0][0] if repair_orders else None
        rooftop = _texting_rooftop(session, user, latest)
        if rooftop is None:
            raise HTTPException(status_code=409, detail="you work at no rooftop to text from")
        sent = _send(session, user, found, rooftop, latest, body, request_id)
    return redirect(request, _after(f"/customers/{customer_id}", sent))


@router.post("/repair-orders/{ro_id}/texts", dependencies=[CsrfDep])
def text_from_ro_page(
    request: Request,
    ro_id: RowId,
    user: WebUserDep,
    database: DatabaseDep,
    body: Body,
    request_id: RequestId,
) -> Response:
    """Text the RO's customer from the RO's page (the text is about this RO)."""
    with database.transaction() as session:
        ro = queries.visible_repair_order(session, principal=user.principal, ro_id=ro_id)
        if ro is None:
            return not_found(request, user)
        found = session.get(Customer, ro.customer_id) if ro.customer_id else None
        if found is None or found.erased_at is not None:
            raise HTTPException(status_code=409, detail="this RO has no customer to text")
        rooftop = session.get_one(Rooftop, ro.rooftop_id)
        sent = _send(session, user, found, rooftop, ro, body, request_id)
    return redirect(request, _after(f"/repair-orders/{ro_id}", sent))


def _send(
    session: Session,
    user: WebUser,
    customer: Customer,
    rooftop: Rooftop,
    ro: RepairOrder | None,
    body: str,
    request_id: str,
) -> int:
    try:
        queued = text_customer(
            session,
            customer=customer,
            rooftop=rooftop,
            ro=ro,
            body=body,
            principal=user.principal,
            request_id=request_id,
            now=utcnow(),
        )
    except ComposeRefused as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return queued.message.id


def _after(page: str, message_id: int) -> str:
    return f"{page}?sent={message_id}#compose"
