"""Twilio status callbacks: `POST /webhooks/twilio/status` moves outbox rows forward."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from app.deps import Database, DatabaseDep, TwilioFormDep, in_webhook_thread
from app.messaging.service import StatusUpdate, apply_provider_status

log = logging.getLogger(__name__)

router = APIRouter()


def _error_code(raw: str) -> int | None:
    try:
        return int(raw) if raw.strip() else None
    except ValueError:
        return None


@router.post("/webhooks/twilio/status", include_in_schema=False)
async def message_status(request: Request, form: TwilioFormDep, database: DatabaseDep) -> Response:
    """Apply a signed status callback; idempotent, forward-only.

    An unknown MessageSid is answered 200 (and logged): Twilio must not retry a
    callback we can never place.
    """
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid and form.get("CallSid"):
        # A number's call-status callback may point here too; calls are tracked elsewhere.
        return Response(status_code=204)
    if not sid or not status:
        log.warning("status callback without MessageSid/MessageStatus: %s", sorted(form.fields))
        return Response(status_code=400, content="MessageSid and MessageStatus are required")
    update = StatusUpdate(
        sid=sid,
        status=status.lower(),
        error_code=_error_code(form.get("ErrorCode")),
        error_message=form.get("ErrorMessage") or None,
    )
    outcome = await in_webhook_thread(request, _apply, database, update)
    if outcome == "unknown":
        log.warning("status callback for unknown message %s (%s); ignored", sid, status)
    return Response(status_code=200)


def _apply(database: Database, update: StatusUpdate) -> str:
    with database.transaction() as session:
        return apply_provider_status(session, update)
