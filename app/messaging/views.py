"""Twilio status callbacks: `POST /webhooks/twilio/status` moves outbox rows forward."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from app.db import utcnow
from app.deps import Database, DatabaseDep, TwilioFormDep, in_webhook_thread
from app.messaging.service import StatusUpdate, apply_provider_status, hold_early_status

log = logging.getLogger(__name__)

router = APIRouter()


# Twilio's error codes have five digits; the columns are 32-bit INTEGER on both databases.
MAX_ERROR_CODE = 2**31 - 1


def _error_code(raw: str) -> int | None:
    """ErrorCode as a number; text, or a number no column can hold, is not a code."""
    text = raw.strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_ERROR_CODE:
        return int(text)
    return None


@router.post("/webhooks/twilio/status", include_in_schema=False)
async def message_status(request: Request, form: TwilioFormDep, database: DatabaseDep) -> Response:
    """Apply a signed status callback; idempotent, forward-only.

    A MessageSid not recorded yet is answered 200 and held: the worker records a batch's
    SIDs once the whole batch is sent, and Twilio may report the first sends sooner. The
    worker applies held callbacks every few seconds (`apply_early_statuses`).
    """
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = form.get("MessageStatus") or form.get("SmsStatus")
    if not sid and form.get("CallSid"):
        # A number's call-status callback may point here too; calls are tracked elsewhere.
        return Response(status_code=204)
    if not sid or not status:
        log.warning("status callback without MessageSid/MessageStatus: %s", sorted(form.fields))
        return Response(status_code=400, content="MessageSid and MessageStatus are required")
    raw_code = form.get("ErrorCode").strip()
    error_code = _error_code(raw_code)
    error_message = form.get("ErrorMessage") or None
    if raw_code and error_code is None:
        # The status still counts; the odd code is kept as text, never a 500 or a lost update.
        log.warning("status callback for %s: ErrorCode %r is no error code", sid, raw_code[:40])
        error_message = error_message or f"ErrorCode {raw_code[:40]}"
    update = StatusUpdate(
        sid=sid, status=status.lower(), error_code=error_code, error_message=error_message
    )
    outcome = await in_webhook_thread(request, _apply, database, update)
    if outcome == "unknown":
        log.info("status callback for %s (%s) before its send was recorded: held", sid, status)
    return Response(status_code=200)


def _apply(database: Database, update: StatusUpdate) -> str:
    with database.transaction() as session:
        outcome = apply_provider_status(session, update)
        if outcome == "unknown":  # Twilio can report a send before our batch records it
            hold_early_status(session, update, now=utcnow())
        return outcome
