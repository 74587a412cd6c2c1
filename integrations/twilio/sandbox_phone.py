"""The customer's side of the sandbox: inbound texts and calls sent to Pitwall.

Each action posts a correctly signed webhook to ``{pitwall_public_url}/webhooks/twilio/...``
exactly as Twilio would, and records Pitwall's TwiML answer in the customer's thread.
The JSON endpoints (``/_sandbox/inbound``, ``/_sandbox/call``) serve tests; the
phone view's forms call the same functions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from integrations.twilio.sandbox_config import API_VERSION, SandboxConfig, new_sid
from integrations.twilio.sandbox_services import ServiceDirectory
from integrations.twilio.sandbox_state import SandboxState, StoredMessage, ThreadEntry
from integrations.twilio.sandbox_twiml import TwimlAnswer, gather_url, parse_twiml
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature

MESSAGES_PATH = "/webhooks/twilio/messages"
VOICE_PATH = "/webhooks/twilio/voice"
DIAL_STATUS_PATH = "/webhooks/twilio/voice/dial-status"
DIAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})

# Twilio's default keywords (plus the newer CTIA ones), matched on the whole message.
_OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
_OPT_IN = {"START", "YES", "UNSTOP"}
_HELP = {"HELP", "INFO"}
# Twilio's own standard replies to them (support article 223134027).
CARRIER_REPLIES = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages "
    "from this number. Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. "
    "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}


class PhoneError(ValueError):
    """A phone-view request that cannot be carried out (bad number, unknown call)."""


def _address(number: str, channel: str) -> str:
    bare = number.strip().removeprefix("whatsapp:")
    if not bare.startswith("+") or not bare[1:].isdigit():
        raise PhoneError(f"{number!r} is not an E.164 number like +14155550142")
    return f"whatsapp:{bare}" if channel == "whatsapp" else bare


class CustomerPhone:
    """Plays the customer: texts and calls the rooftop through signed webhooks."""

    def __init__(
        self, config: SandboxConfig, state: SandboxState, services: ServiceDirectory | None = None
    ) -> None:
        self._config = config
        self._state = state
        self._services = services

    async def _post(self, url: str, params: dict[str, str]) -> httpx.Response:
        signature = compute_signature(self._config.auth_token, url, params)
        headers = {
            SIGNATURE_HEADER: signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        # Twilio gives a webhook 15 s before it gives up.
        async with httpx.AsyncClient(timeout=15.0) as client:
            return await client.post(url, data=params, headers=headers)

    def _rooftop(self, customer: str, to: str | None, channel: str) -> str:
        number = to or self._state.rooftop_for(customer)
        if not number and self._config.phone_numbers:
            number = self._config.phone_numbers[0]
        if not number:
            raise PhoneError(f"no rooftop number known for {customer}; pass 'to'")
        return _address(number, channel)

    async def text(
        self,
        *,
        from_: str,
        body: str,
        to: str | None = None,
        channel: str = "sms",
        profile_name: str | None = None,
        repeat: int = 1,
    ) -> dict[str, Any]:
        """Send ``body`` from the customer to the rooftop; return Pitwall's answer.

        ``repeat`` re-posts the identical webhook (same MessageSid), as Twilio
        does when a webhook fails, so one-answer-per-MessageSid can be tested.
        """
        channel = "whatsapp" if channel == "whatsapp" or from_.startswith("whatsapp:") else "sms"
        customer = _address(from_, channel)
        rooftop = self._rooftop(customer, to, channel)
        sid = new_sid("SM")
        params = {
            "AccountSid": self._config.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": customer,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": rooftop,
        }
        now = datetime.now(UTC)
        carrier_reply = None
        if channel == "whatsapp":
            params["ProfileName"] = profile_name or "Customer"
            params["WaId"] = customer.removeprefix("whatsapp:+")
            self._state.note_whatsapp_inbound(customer, now)
        else:
            carrier_reply = self._carrier_keyword(customer, rooftop, body, params)
        self._state.set_rooftop(customer, rooftop)
        self._state.add_message(
            StoredMessage(
                sid=sid,
                account_sid=self._config.account_sid,
                to=rooftop,
                from_=customer,
                body=body,
                direction="inbound",
                status="received",
            )
        )
        self._state.append_thread(customer, ThreadEntry("inbound", body, now, sid=sid))
        if carrier_reply:
            self._state.append_thread(
                customer, ThreadEntry("carrier", carrier_reply, now, status="from Twilio")
            )
        url = self._config.webhook_url(MESSAGES_PATH)
        route = self._services.inbound_route(rooftop) if self._services else None
        if route is not None and route.service_sid:
            params["MessagingServiceSid"] = route.service_sid
        if route is not None and route.url != url:
            # The number's Messaging Service sends its texts elsewhere (or nowhere): Pitwall
            # never hears of this one, exactly as on Twilio.
            where = route.url or "nowhere (the Messaging Service has no inbound URL)"
            missed = f"Twilio sent this text to {where}, not to Pitwall"
            self._note(customer, missed)
            dropped: dict[str, Any] = {
                "status_code": None,
                "twiml": "",
                "replies": [],
                "error": missed,
            }
            return {"message_sid": sid, "from": customer, "to": rooftop, **dropped, "attempts": []}
        results = []
        for _ in range(max(1, repeat)):
            results.append(await self._deliver(customer, url, params))
        return {
            "message_sid": sid,
            "from": customer,
            "to": rooftop,
            **results[-1],
            "attempts": results,
        }

    def _carrier_keyword(
        self, customer: str, rooftop: str, body: str, params: dict[str, str]
    ) -> str | None:
        """Twilio's own keyword handling: block or unblock, answer, and (Advanced Opt-Out
        only) say so in ``OptOutType``. Returns Twilio's reply, if it sends one."""
        keyword = body.strip().upper()
        sender = self._config.sender_of(rooftop)
        blocked = self._state.is_opted_out(customer, sender=sender)
        if keyword in _OPT_OUT:
            kind = "STOP"
        elif keyword in _HELP:
            kind = "HELP"
        elif keyword in _OPT_IN and (keyword != "YES" or blocked):
            kind = "START"  # a bare YES is only a keyword to a phone that is blocked
        else:
            return None
        if kind != "HELP":
            self._state.set_opted_out(customer, kind == "STOP", sender=sender)
        if self._config.has_advanced_opt_out(rooftop):
            params["OptOutType"] = kind
        return CARRIER_REPLIES[kind]

    async def _deliver(self, customer: str, url: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._post(url, params)
        except httpx.HTTPError as exc:
            self._note(customer, f"Pitwall did not answer: {exc}")
            return {"status_code": None, "twiml": "", "replies": [], "error": str(exc)}
        answer = parse_twiml(response.text) if response.is_success else TwimlAnswer()
        sender = self._config.sender_of(params["To"])
        for reply in answer.messages:
            if not customer.startswith("whatsapp:") and self._state.is_opted_out(
                customer, sender=sender
            ):
                # Twilio refuses every message to a blocked phone, TwiML replies too.
                self._note(customer, f"Twilio refused Pitwall's reply (21610): {reply}")
                continue
            self._state.append_thread(
                customer, ThreadEntry("twiml", reply, datetime.now(UTC), status="twiml")
            )
        if not response.is_success:
            self._note(customer, f"Pitwall answered HTTP {response.status_code}")
        return {
            "status_code": response.status_code,
            "twiml": response.text,
            "replies": answer.messages,
        }

    def _note(self, customer: str, text: str) -> None:
        self._state.append_thread(customer, ThreadEntry("note", text, datetime.now(UTC)))

    async def call(
        self, *, from_: str, to: str | None = None, dial_status: str | None = None
    ) -> dict[str, Any]:
        """Ring the rooftop; optionally finish the ``<Dial>`` with ``dial_status``."""
        customer = _address(from_, "voice")
        rooftop = self._rooftop(customer, to, "voice")
        call_sid = new_sid("CA")
        params = {
            "AccountSid": self._config.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": rooftop,
            "Caller": customer,
            "Direction": "inbound",
            "From": customer,
            "To": rooftop,
        }
        self._state.set_rooftop(customer, rooftop)
        self._state.append_thread(
            customer, ThreadEntry("call", f"Called {rooftop}", datetime.now(UTC), sid=call_sid)
        )
        url = self._config.webhook_url(VOICE_PATH)
        result = await self._voice(customer, url, params)
        answer: TwimlAnswer = result.pop("answer")
        dial_url = urljoin(url, answer.dial_action) if answer.dial_action else None
        self._state.save_call(
            call_sid,
            {
                "customer": customer,
                "rooftop": rooftop,
                "dial_url": dial_url or self._config.webhook_url(DIAL_STATUS_PATH),
                "has_dial": answer.has_dial,
                "dial_number": answer.dial_number,
                "dial_status": None,
                "gather_url": gather_url(url, answer),
                "voice_url": url,
            },
        )
        outcome: dict[str, Any] = {"call_sid": call_sid, "from": customer, "to": rooftop, **result}
        outcome["dial"] = (
            {"number": answer.dial_number, "action": dial_url} if answer.has_dial else None
        )
        if dial_status is not None:
            outcome["dial_result"] = await self.finish_dial(call_sid, dial_status)
        return outcome

    async def press(self, call_sid: str, digits: str) -> dict[str, Any]:
        """Press keys during the call: post ``Digits`` to the waiting ``<Gather action>``."""
        if not digits or any(ch not in "0123456789*#" for ch in digits):
            raise PhoneError("digits must be keypad keys: 0-9, * or #")
        call = self._state.get_call(call_sid)
        if call is None:
            raise PhoneError(f"unknown call {call_sid}")
        if not call.get("gather_url"):
            raise PhoneError(f"call {call_sid} is not waiting for keys")
        customer, rooftop = call["customer"], call["rooftop"]
        params = {
            "AccountSid": self._config.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid,
            "CallStatus": "in-progress",
            "Called": rooftop,
            "Caller": customer,
            "Digits": digits,
            "Direction": "inbound",
            "FinishedOnKey": "",
            "From": customer,
            "To": rooftop,
        }
        url = call["gather_url"]
        call["gather_url"] = None  # the keys are spent; a page drawn meanwhile shows no keypad
        self._state.save_call(call_sid, call)
        self._note(customer, f"Pressed {digits}")
        result = await self._voice(customer, url, params)
        answer: TwimlAnswer = result.pop("answer")
        call["gather_url"] = gather_url(url, answer)
        if answer.has_dial:
            call.update(
                has_dial=True,
                dial_number=answer.dial_number,
                dial_url=urljoin(url, answer.dial_action)
                if answer.dial_action
                else self._config.webhook_url(DIAL_STATUS_PATH),
                dial_status=None,
            )
        self._state.save_call(call_sid, call)
        result["dial"] = {"number": answer.dial_number} if answer.has_dial else None
        return result

    async def finish_dial(self, call_sid: str, dial_status: str) -> dict[str, Any]:
        """Post the ``<Dial action>`` request: the store answered, or did not."""
        if dial_status not in DIAL_STATUSES:
            raise PhoneError(f"dial_status must be one of {sorted(DIAL_STATUSES)}")
        call = self._state.get_call(call_sid)
        if call is None:
            raise PhoneError(f"unknown call {call_sid}")
        customer, rooftop = call["customer"], call["rooftop"]
        params = {
            "AccountSid": self._config.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid,
            "CallStatus": "in-progress" if dial_status == "completed" else "completed",
            "Called": rooftop,
            "Caller": customer,
            "DialCallDuration": "42" if dial_status == "completed" else "0",
            "DialCallSid": new_sid("CA"),
            "DialCallStatus": dial_status,
            "Direction": "inbound",
            "From": customer,
            "To": rooftop,
        }
        call["dial_status"] = dial_status
        self._state.save_call(call_sid, call)
        self._note(customer, f"Store line: {dial_status}")
        result = await self._voice(customer, call["dial_url"], params)
        result.pop("answer")
        return result

    async def _voice(self, customer: str, url: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._post(url, params)
        except httpx.HTTPError as exc:
            self._note(customer, f"Pitwall did not answer: {exc}")
            return {"status_code": None, "twiml": "", "says": [], "answer": TwimlAnswer()}
        answer = parse_twiml(response.text) if response.is_success else TwimlAnswer()
        for said in answer.says:
            self._state.append_thread(
                customer, ThreadEntry("twiml", f"Voice: {said}", datetime.now(UTC), status="say")
            )
        if not response.is_success:
            self._note(customer, f"Pitwall answered HTTP {response.status_code}")
        return {
            "status_code": response.status_code,
            "twiml": response.text,
            "says": answer.says,
            "answer": answer,
        }
