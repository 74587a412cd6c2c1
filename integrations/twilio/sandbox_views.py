"""The sandbox's copy of Twilio's REST API (``/2010-04-01/...``), wire format included.

Messages (create, list, fetch), the Account (credential checks) and
IncomingPhoneNumbers (list, buy, update webhooks), behind HTTP Basic auth.
Injected faults are applied to message creates here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from integrations.twilio.sandbox_callbacks import CallbackDispatcher
from integrations.twilio.sandbox_config import (
    API_VERSION,
    SandboxConfig,
    count_segments,
    new_sid,
    rfc2822,
)
from integrations.twilio.sandbox_state import PhoneNumber, SandboxState, StoredMessage

ABORT_SCOPE_KEY = "pitwall.sandbox.abort"

_ADDRESS = re.compile(r"^(whatsapp:)?\+[1-9]\d{6,14}$")
_MAX_PAGE_SIZE = 1000


def twilio_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Twilio's error body: ``{code, message, more_info, status}``."""
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
        headers=headers,
    )


def _authorized(request: Request, config: SandboxConfig) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = secrets.compare_digest(user.encode(), config.account_sid.encode())
    password_ok = secrets.compare_digest(password.encode(), config.auth_token.encode())
    return user_ok and password_ok


def _auth_failure(request: Request, config: SandboxConfig, account_sid: str) -> Response | None:
    if not _authorized(request, config):
        return twilio_error(
            401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'}
        )
    if account_sid != config.account_sid:
        return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
    return None


def _validate_create(
    params: dict[str, str], config: SandboxConfig, state: SandboxState
) -> Response | None:
    """Twilio's synchronous refusals, in the order Twilio checks them."""
    to = params.get("To", "")
    if not _ADDRESS.match(to):
        return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    sender = params.get("From")
    if not sender and not params.get("MessagingServiceSid"):
        return twilio_error(
            400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"
        )
    if sender and to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
        return twilio_error(
            400, 21910, "Invalid From and To pair. From and To should be of the same channel"
        )
    body = params.get("Body")
    if not body and not params.get("ContentSid") and not params.get("MediaUrl"):
        return twilio_error(400, 21602, "Message body is required.")
    if body and len(body) > 1600:
        return twilio_error(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    if not to.startswith("whatsapp:"):
        if to in config.landlines:
            return twilio_error(400, 21614, f"'To' number {to} is not a valid mobile number")
        blocked_by = params.get("MessagingServiceSid") or config.sender_of(sender or "")
        if state.is_opted_out(to, sender=blocked_by):
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    return None


def _abort_connection(request: Request) -> bool:
    abort: Callable[[], bool] | None = request.scope.get(ABORT_SCOPE_KEY)
    return bool(abort and abort())


def _page(
    request: Request, items: list[dict[str, Any]], key: str, filters: dict[str, str]
) -> dict[str, Any]:
    """Slice ``items`` like Twilio's v2010 list endpoints (Page/PageSize/PageToken)."""
    query = request.query_params
    try:
        page_size = max(1, min(int(query.get("PageSize", "50")), _MAX_PAGE_SIZE))
        page = max(0, int(query.get("Page", "0")))
    except ValueError:
        page_size, page = 50, 0
    start = page * page_size
    chunk = items[start : start + page_size]
    path = request.url.path

    def uri(number: int, token: str | None = None) -> str:
        params = {**filters, "PageSize": str(page_size), "Page": str(number)}
        if token:
            params["PageToken"] = token
        return f"{path}?{urlencode(params)}"

    has_next = start + page_size < len(items)
    next_token = f"PA{chunk[-1]['sid']}" if has_next and chunk else None
    return {
        key: chunk,
        "end": start + max(len(chunk) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, next_token) if has_next else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page, query.get("PageToken")),
    }


def _date_filter(query: Any) -> Callable[[StoredMessage], bool]:
    """Twilio's ``DateSent``, ``DateSent<`` and ``DateSent>`` filters (whole days, UTC)."""

    def parse(name: str) -> date | None:
        raw = query.get(name)
        return date.fromisoformat(raw[:10]) if raw else None

    exact, before, after = parse("DateSent"), parse("DateSent<"), parse("DateSent>")

    def keep(message: StoredMessage) -> bool:
        if exact is None and before is None and after is None:
            return True
        if message.date_sent is None:
            return False
        sent = message.date_sent.date()
        return (
            (exact is None or sent == exact)
            and (before is None or sent <= before)
            and (after is None or sent >= after)
        )

    return keep


def _number_json(config: SandboxConfig, number: PhoneNumber) -> dict[str, Any]:
    now = rfc2822(datetime.now(UTC))
    return {
        "account_sid": config.account_sid,
        "api_version": API_VERSION,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
        "date_created": now,
        "date_updated": now,
        "friendly_name": number.friendly_name,
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_method": "POST",
        "sms_url": number.sms_url,
        "status_callback": number.status_callback,
        "status_callback_method": "POST",
        "uri": f"/{API_VERSION}/Accounts/{config.account_sid}/IncomingPhoneNumbers/"
        f"{number.sid}.json",
        "voice_method": "POST",
        "voice_url": number.voice_url,
    }


def api_router(
    config: SandboxConfig, state: SandboxState, dispatcher: CallbackDispatcher
) -> APIRouter:
    """Routes that answer like ``https://api.twilio.com/2010-04-01``."""
    router = APIRouter(prefix=f"/{API_VERSION}/Accounts")

    async def latency() -> None:
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)

    @router.post("/{account_sid}/Messages.json")
    async def create_message(account_sid: str, request: Request) -> Response:
        await latency()
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        form = await request.form()
        params = {name: str(value) for name, value in form.multi_items()}
        fault = state.pop_fault()
        kind = fault.kind if fault else None
        state.record_create_request(params, kind or "ok")
        if fault and kind == "500_before":
            return twilio_error(500, 20500, "Internal Server Error")
        if fault and kind == "429":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else None
            return twilio_error(429, 20429, "Too Many Requests", headers)
        if fault and kind == "error":
            assert fault.code is not None
            message = fault.message or f"Sandbox injected error {fault.code}"
            return twilio_error(fault.status or 400, fault.code, message)
        if (refusal := _validate_create(params, config, state)) is not None:
            return refusal

        service = params.get("MessagingServiceSid")
        body = params.get("Body")
        sender = params.get("From") or config.messaging_services.get(service or "")
        if sender and params["To"].startswith("whatsapp:") and ":" not in sender:
            # A Messaging Service sends on the recipient's channel.
            sender = f"whatsapp:{sender}"
        stored = StoredMessage(
            sid=new_sid("SM"),
            account_sid=config.account_sid,
            to=params["To"],
            from_=sender,
            body=body,
            status="accepted" if service else "queued",
            messaging_service_sid=service,
            content_sid=params.get("ContentSid"),
            content_variables=params.get("ContentVariables"),
            status_callback=params.get("StatusCallback"),
            num_segments=count_segments(body),
        )
        if (
            config.whatsapp_window
            and stored.to.startswith("whatsapp:")
            and not stored.content_sid
            and not state.whatsapp_window_open(stored.to, stored.date_created)
        ):
            # Twilio accepts the create and fails it asynchronously.
            stored.error_code = 63016
        saved = state.add_message(stored)
        dispatcher.schedule_lifecycle(
            saved, fault, delay_s=config.callback_delay_s, post=config.callbacks
        )
        if fault and kind == "500_after":
            return twilio_error(500, 20500, "Internal Server Error")
        if fault and kind == "reset" and _abort_connection(request):
            await asyncio.sleep(0)  # let uvicorn notice the closed transport
            return Response(status_code=500)
        if fault and kind == "reset":
            raise RuntimeError("sandbox could not reset the connection under this server")
        if fault and kind == "delay_ms":
            await asyncio.sleep(fault.delay_ms / 1000)
        return JSONResponse(saved.to_json(), status_code=201)

    @router.get("/{account_sid}/Messages.json")
    async def list_messages(account_sid: str, request: Request) -> Response:
        await latency()
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        query = request.query_params
        try:
            keep = _date_filter(query)
        except ValueError:
            return twilio_error(400, 20001, "Invalid DateSent: expected YYYY-MM-DD")
        found = state.list_messages(to=query.get("To"), from_=query.get("From"))
        items = [m.to_json() for m in found if keep(m)]
        filters = {
            name: query[name]
            for name in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if name in query
        }
        return JSONResponse(_page(request, items, "messages", filters))

    @router.get("/{account_sid}/Messages/{sid}.json")
    async def fetch_message(account_sid: str, sid: str, request: Request) -> Response:
        await latency()
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        message = state.get_message(sid)
        if message is None:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        return JSONResponse(message.to_json())

    @router.get("/{account_sid}.json")
    async def fetch_account(account_sid: str, request: Request) -> Response:
        await latency()
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        now = rfc2822(datetime.now(UTC))
        return JSONResponse(
            {
                "sid": config.account_sid,
                "owner_account_sid": config.account_sid,
                "friendly_name": config.friendly_name,
                "status": "active",
                "type": "Full",
                "date_created": now,
                "date_updated": now,
                "uri": f"/{API_VERSION}/Accounts/{config.account_sid}.json",
                "subresource_uris": {
                    "messages": f"/{API_VERSION}/Accounts/{config.account_sid}/Messages.json",
                },
            }
        )

    @router.get("/{account_sid}/IncomingPhoneNumbers.json")
    async def list_numbers(account_sid: str, request: Request) -> Response:
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        wanted = request.query_params.get("PhoneNumber")
        items = [
            _number_json(config, pn)
            for pn in state.list_numbers()
            if wanted is None or pn.phone_number == wanted
        ]
        filters = {"PhoneNumber": wanted} if wanted else {}
        return JSONResponse(_page(request, items, "incoming_phone_numbers", filters))

    @router.post("/{account_sid}/IncomingPhoneNumbers.json")
    async def buy_number(account_sid: str, request: Request) -> Response:
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        form = await request.form()
        number = str(form.get("PhoneNumber", ""))
        if not _ADDRESS.match(number) or number.startswith("whatsapp:"):
            return twilio_error(400, 21421, f"PhoneNumber {number} is invalid")
        created = state.add_number(number)
        updated = state.update_number(created.sid, _number_changes(form))
        return JSONResponse(_number_json(config, updated or created), status_code=201)

    @router.post("/{account_sid}/IncomingPhoneNumbers/{sid}.json")
    async def update_number(account_sid: str, sid: str, request: Request) -> Response:
        if (failure := _auth_failure(request, config, account_sid)) is not None:
            return failure
        form = await request.form()
        updated = state.update_number(sid, _number_changes(form))
        if updated is None:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        return JSONResponse(_number_json(config, updated))

    return router


def _number_changes(form: Any) -> dict[str, str]:
    fields = {
        "SmsUrl": "sms_url",
        "VoiceUrl": "voice_url",
        "StatusCallback": "status_callback",
        "FriendlyName": "friendly_name",
    }
    return {attr: str(form[name]) for name, attr in fields.items() if name in form}
