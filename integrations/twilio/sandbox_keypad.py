"""The phone view's keypad (keys pressed during a call) and its favicon.

While Pitwall's TwiML waits in a ``<Gather>`` (the status call's "press 1 for your
advisor"), the caller's card shows a keypad; each key posts ``Digits`` to the
gather's action, signed, as Twilio does. ``POST /_sandbox/call/{sid}/digits`` is
the JSON twin for tests.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from integrations.twilio.sandbox_phone import CustomerPhone, PhoneError
from integrations.twilio.sandbox_state import SandboxState

FAVICON = Path(__file__).resolve().parent / "sandbox_favicon.ico"
KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")

KEYPAD_CSS = """
.keypad{display:grid;grid-template-columns:repeat(3,1fr);gap:6px;padding:8px 12px;
border-top:1px solid #e3e6ea}
.keypad p{grid-column:1/-1;margin:0;font-size:13px;color:#5b6577}
.keypad button{font-size:18px;padding:8px 0;background:#eef1f5;color:#1d2430;
border:1px solid #c5cbd5}
.keypad button:focus-visible{outline:2px solid #2f7cf6}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def keypad_forms(calls: list[dict[str, Any]]) -> str:
    """A keypad for each of the customer's calls that is waiting for keys."""
    return "".join(
        f'<form class="keypad" method="post" action="/_sandbox/phone/digits" '
        f'aria-label="Keypad for the call">'
        f'<input type="hidden" name="call_sid" value="{_e(call["sid"])}">'
        f"<p>On the call: press a key</p>"
        + "".join(
            f'<button name="digits" value="{_e(key)}" aria-label="Press {_e(key)}">{_e(key)}'
            f"</button>"
            for key in KEYS
        )
        + "</form>"
        for call in calls
        if call.get("gather_url") and not call.get("dial_status")
    )


def keypad_router(state: SandboxState, phone: CustomerPhone) -> APIRouter:
    """``/_sandbox/phone/digits`` (the keypad's form), its JSON twin, and ``/favicon.ico``."""
    router = APIRouter()

    @router.post("/_sandbox/call/{call_sid}/digits")
    async def digits_json(call_sid: str, request: Request) -> Response:
        data = await request.json()
        try:
            result = await phone.press(call_sid, str(data.get("digits", "")))
        except PhoneError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    @router.post("/_sandbox/phone/digits")
    async def digits_form(request: Request) -> Response:
        form = await request.form()
        call_sid = str(form.get("call_sid", ""))
        try:
            await phone.press(call_sid, str(form.get("digits", "")))
        except PhoneError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p><a href='/'>Back</a>", status_code=400)
        customer = str((state.get_call(call_sid) or {}).get("customer", ""))
        anchor = customer.replace(":", "-").replace("+", "")
        return RedirectResponse(f"/#t-{anchor}", status_code=303)

    @router.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(
            FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
        )

    return router
