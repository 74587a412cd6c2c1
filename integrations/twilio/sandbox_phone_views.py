"""Routes for the phone view (``GET /``) and its JSON twins used by tests.

The page is plain server-rendered HTML (every value escaped, inline CSS, no CDN);
a few lines of JS poll ``/_sandbox/phone.json`` and reload when something changed,
unless the person is halfway through typing a reply.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from integrations.twilio.sandbox_config import SandboxConfig
from integrations.twilio.sandbox_keypad import KEYPAD_CSS, keypad_forms
from integrations.twilio.sandbox_phone import DIAL_STATUSES, CustomerPhone, PhoneError
from integrations.twilio.sandbox_state import SandboxState, ThreadEntry

_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#eef1f5;color:#1d2430}
header{background:#1d2430;color:#fff;padding:12px 20px}header small{opacity:.7}
main{display:flex;flex-wrap:wrap;gap:16px;padding:16px}
.phone{background:#fff;border-radius:18px;width:340px;box-shadow:0 2px 8px #0002;
display:flex;flex-direction:column}
.phone h2{font-size:15px;margin:0;padding:10px 14px;border-bottom:1px solid #e3e6ea}
.thread{padding:10px;display:flex;flex-direction:column;gap:6px;max-height:420px;
overflow-y:auto}
.b{max-width:80%;padding:7px 10px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word}
.outbound,.twiml,.carrier{background:#e6e9ee;align-self:flex-start}
.carrier{background:#fff4d6;border:1px solid #e0c26a}
.twiml{border:1px dashed #8a94a6}
.inbound{background:#2f7cf6;color:#fff;align-self:flex-end}
.note,.call{align-self:center;font-size:12px;color:#5b6577}
.meta{display:block;font-size:11px;opacity:.7}
form{display:flex;gap:6px;padding:8px;border-top:1px solid #e3e6ea;flex-wrap:wrap}
input[type=text]{flex:1;padding:6px;border:1px solid #c5cbd5;border-radius:8px}
button{padding:6px 10px;border:0;border-radius:8px;background:#2f7cf6;color:#fff;cursor:pointer}
button.alt{background:#5b6577}
.new{padding:16px;background:#fff;margin:16px;border-radius:12px}
"""

_JS = """
let seen = null;
async function poll() {
  try {
    const r = await fetch('/_sandbox/phone.json?summary=1');
    const v = (await r.json()).version;
    const typing = [...document.querySelectorAll('input[type=text]')]
      .some(i => i.value);
    if (seen !== null && v !== seen && !typing) location.reload();
    seen = v;
  } catch (e) {}
}
poll(); setInterval(poll, 1500);
// Like a phone: each conversation opens at its newest message.
for (const t of document.querySelectorAll('.thread')) t.scrollTop = t.scrollHeight;
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# Texts carry links to the customer's page: on a real phone they are tappable, so here too.
_URL = re.compile(r"https?://[^\s<>\"']+")


def _linked(text: str) -> str:
    """Escaped text with each http(s) URL made a link (the URL escaped as well)."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0)
        parts.append(_e(text[last : match.start()]))
        parts.append(f'<a href="{_e(url)}" target="_blank" rel="noopener">{_e(url)}</a>')
        last = match.end()
    parts.append(_e(text[last:]))
    return "".join(parts)


def _bubble(entry: ThreadEntry) -> str:
    meta = entry.at.strftime("%H:%M:%S")
    if entry.status:
        meta += f" · {entry.status}"
    return (
        f'<div class="b {_e(entry.kind)}">{_linked(entry.text)}'
        f'<span class="meta">{_e(meta)}</span></div>'
    )


def _phone_card(customer: str, entries: list[ThreadEntry], calls: list[dict[str, Any]]) -> str:
    bubbles = "".join(_bubble(entry) for entry in entries)
    anchor = _e("t-" + customer.replace(":", "-").replace("+", ""))
    dial_forms = "".join(
        f'<form method="post" action="/_sandbox/phone/dial-status">'
        f'<input type="hidden" name="call_sid" value="{_e(call["sid"])}">'
        f"<span>Call ringing through to the store…</span>"
        f'<button name="dial_status" value="no-answer" class="alt">Not answered</button>'
        f'<button name="dial_status" value="completed">Answered</button></form>'
        for call in calls
        if call.get("has_dial") and not call.get("dial_status")
    )
    voice = ""
    if not customer.startswith("whatsapp:"):
        voice = (
            f'<form method="post" action="/_sandbox/phone/call">'
            f'<input type="hidden" name="from" value="{_e(customer)}">'
            f'<button class="alt">Call the store</button></form>'
        )
    return (
        f'<section class="phone" id="{anchor}"><h2>{_e(customer)}</h2>'
        f'<div class="thread">{bubbles}</div>'
        f'<form method="post" action="/_sandbox/phone/reply">'
        f'<input type="hidden" name="from" value="{_e(customer)}">'
        f'<input type="text" name="body" placeholder="Reply as the customer" required>'
        f"<button>Send</button></form>{voice}{dial_forms}{keypad_forms(calls)}</section>"
    )


def _store_choice(config: SandboxConfig) -> str:
    """Which of the account's numbers a new conversation texts (and its card then calls)."""
    if len(config.phone_numbers) < 2:
        return ""
    options = "".join(f'<option value="{_e(n)}">{_e(n)}</option>' for n in config.phone_numbers)
    return f'<label>to <select name="to" aria-label="Store number">{options}</select></label>'


def render_phone_page(config: SandboxConfig, state: SandboxState) -> str:
    """The whole phone view as an HTML string."""
    threads = state.snapshot_threads()
    calls_by_customer: dict[str, list[dict[str, Any]]] = {}
    for sid, call in state.calls_snapshot().items():
        calls_by_customer.setdefault(call["customer"], []).append({"sid": sid, **call})

    def last_at(item: tuple[str, list[ThreadEntry]]) -> datetime:
        return item[1][-1].at if item[1] else datetime.min

    cards = "".join(
        _phone_card(customer, entries, calls_by_customer.get(customer, []))
        for customer, entries in sorted(threads.items(), key=last_at, reverse=True)
    )
    empty = "<p>No conversations yet: texts Pitwall sends appear here.</p>" if not cards else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="icon" href="/favicon.ico" sizes="32x32">'
        f"<title>Twilio sandbox · phones</title><style>{_CSS}{KEYPAD_CSS}</style></head><body>"
        f"<header><strong>Customer phones</strong> <small>Twilio sandbox for "
        f"{_e(config.account_sid)} · webhooks to {_e(config.pitwall_public_url)}</small></header>"
        '<form class="new" method="post" action="/_sandbox/phone/reply">'
        '<input type="text" name="from" placeholder="Customer number, e.g. +14155550142" required>'
        '<input type="text" name="body" placeholder="First message to the store" required>'
        f"{_store_choice(config)}"
        '<label><input type="checkbox" name="channel" value="whatsapp"> WhatsApp</label>'
        f"<button>Text the store</button></form>{empty}<main>{cards}</main>"
        f"<script>{_JS}</script></body></html>"
    )


def _thread_json(entries: list[ThreadEntry]) -> list[dict[str, Any]]:
    return [
        {"kind": e.kind, "text": e.text, "at": e.at.isoformat(), "sid": e.sid, "status": e.status}
        for e in entries
    ]


def phone_router(config: SandboxConfig, state: SandboxState, phone: CustomerPhone) -> APIRouter:
    """The phone view and the ``/_sandbox/inbound`` / ``/_sandbox/call`` JSON endpoints."""
    router = APIRouter()

    def bad(exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @router.get("/", response_class=HTMLResponse)
    async def phone_view() -> HTMLResponse:
        return HTMLResponse(render_phone_page(config, state))

    @router.get("/_sandbox/phone.json")
    async def phone_json(summary: int = 0) -> dict[str, Any]:
        if summary:
            return {"version": state.version}
        threads = state.snapshot_threads()
        return {
            "version": state.version,
            "threads": {customer: _thread_json(entries) for customer, entries in threads.items()},
        }

    @router.post("/_sandbox/inbound")
    async def inbound(request: Request) -> Response:
        data = await request.json()
        try:
            result = await phone.text(
                from_=str(data["from"]),
                body=str(data.get("body", "")),
                to=data.get("to"),
                channel=str(data.get("channel", "sms")),
                profile_name=data.get("profile_name"),
                repeat=int(data.get("repeat", 1)),
            )
        except (KeyError, PhoneError, ValueError) as exc:
            return bad(exc)
        return JSONResponse(result)

    @router.post("/_sandbox/call")
    async def call(request: Request) -> Response:
        data = await request.json()
        try:
            result = await phone.call(
                from_=str(data["from"]), to=data.get("to"), dial_status=data.get("dial_status")
            )
        except (KeyError, PhoneError) as exc:
            return bad(exc)
        return JSONResponse(result)

    @router.post("/_sandbox/call/{call_sid}/dial-status")
    async def dial_status(call_sid: str, request: Request) -> Response:
        data = await request.json()
        try:
            result = await phone.finish_dial(call_sid, str(data.get("dial_status", "no-answer")))
        except PhoneError as exc:
            return bad(exc)
        return JSONResponse(result)

    def back_to(customer: str) -> RedirectResponse:
        anchor = customer.replace(":", "-").replace("+", "")
        return RedirectResponse(f"/#t-{anchor}", status_code=303)

    @router.post("/_sandbox/phone/reply")
    async def reply_form(request: Request) -> Response:
        form = await request.form()
        channel = "whatsapp" if form.get("channel") == "whatsapp" else "sms"
        try:
            to = str(form.get("to", "")) or None
            result = await phone.text(
                from_=str(form.get("from", "")),
                body=str(form.get("body", "")),
                channel=channel,
                to=to if channel == "sms" else None,  # a store's WhatsApp sender differs
            )
        except PhoneError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p><a href='/'>Back</a>", status_code=400)
        return back_to(result["from"])

    @router.post("/_sandbox/phone/call")
    async def call_form(request: Request) -> Response:
        form = await request.form()
        try:
            result = await phone.call(from_=str(form.get("from", "")))
        except PhoneError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p><a href='/'>Back</a>", status_code=400)
        return back_to(result["from"])

    @router.post("/_sandbox/phone/dial-status")
    async def dial_form(request: Request) -> Response:
        form = await request.form()
        status = str(form.get("dial_status", "no-answer"))
        call_sid = str(form.get("call_sid", ""))
        if status not in DIAL_STATUSES:
            status = "no-answer"
        try:
            await phone.finish_dial(call_sid, status)
        except PhoneError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p><a href='/'>Back</a>", status_code=400)
        call_info = state.get_call(call_sid) or {}
        return back_to(str(call_info.get("customer", "")))

    return router
