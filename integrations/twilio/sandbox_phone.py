"""The customer's side of the sandbox: inbound texts and calls sent to Pitwall.

Each action posts a correctly signed webhook to ``{pitwall_public_url}/webhooks/twilio/...``
exactly as Twilio would, and records Pitwall's TwiML answer in the customer's thread.
The JSON endpoints (``/_sandbox/inbound``, ``/_sandbox/call``) serve tests; the
phone view's forms call the same functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

import httpx
from defusedxml import ElementTree as SafeET

from integrations.twilio.sandbox_config import API_VERSION, SandboxConfig, new_sid
from integrations.twilio.sandbox_state import SandboxState, StoredMessage, ThreadEntry
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature

MESSAGES_PATH = "/webhooks/twilio/messages"
VOICE_PATH = "/webhooks/twilio/voice"
DIAL_STATUS_PATH = "/webhooks/twilio/voice/dial-status"
DIAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})

# Twilio's default keywords (plus the newer CTIA ones), matched on the whole message.
_OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
_OPT_IN = {"START", "YES", "UNSTOP"}
_HELP = {"HELP", "INFO"}


class PhoneError(ValueError):
    """A phone-view request that cannot be carried out (bad number, unknown call)."""


@dataclass
class TwimlAnswer:
    """What Pitwall's TwiML asked for, in the parts the phone view shows."""

    messages: list[str] = field(default_factory=list)
    says: list[str] = field(default_factory=list)
    dial_number: str | None = None
    dial_action: str | None = None
    has_dial: bool = False


def parse_twiml(text: str) -> TwimlAnswer:
    """Read ``<Response>`` TwiML safely (defusedxml); unreadable XML gives an empty answer."""
    answer = TwimlAnswer()
    if not text.strip():
        return answer
    try:
        root: Element = SafeET.fromstring(text)
    except Exception:  # any parse or defusedxml refusal: show nothing rather than fail
        return answer
    for node in root.iter():
        if node.tag == "Message":
            body = node.find("Body")
            text = "".join(body.itertext()) if body is not None else (node.text or "")
            answer.messages.append(text.strip())
        elif node.tag == "Say":
            answer.says.append("".join(node.itertext()).strip())
        elif node.tag == "Dial":
            answer.has_dial = True
            answer.dial_action = node.get("action")
            number = node.find("Number")
            target = number.text if number is not None else node.text
            answer.dial_number = (target or "").strip() or None
    return answer


def _address(number: str, channel: str) -> str:
    bare = number.strip().removeprefix("whatsapp:")
    if not bare.startswith("+") or not bare[1:].isdigit():
        raise PhoneError(f"{number!r} is not an E.164 number like +14155550142")
    return f"whatsapp:{bare}" if channel == "whatsapp" else bare


class CustomerPhone:
    """Plays the customer: texts and calls the rooftop through signed webhooks."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self._config = config
        self._state = state

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
        keyword = body.strip().upper()
        now = datetime.now(UTC)
        if channel == "whatsapp":
            params["ProfileName"] = profile_name or "Customer"
            params["WaId"] = customer.removeprefix("whatsapp:+")
            self._state.note_whatsapp_inbound(customer, now)
        elif keyword in _OPT_OUT | _OPT_IN | _HELP:
            # Twilio's Advanced Opt-Out blocks later sends itself (21610) and says so.
            params["OptOutType"] = (
                "STOP" if keyword in _OPT_OUT else "START" if keyword in _OPT_IN else "HELP"
            )
            if keyword in _OPT_OUT | _OPT_IN:
                self._state.set_opted_out(customer, keyword in _OPT_OUT)
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
        url = self._config.webhook_url(MESSAGES_PATH)
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

    async def _deliver(self, customer: str, url: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._post(url, params)
        except httpx.HTTPError as exc:
            self._note(customer, f"Pitwall did not answer: {exc}")
            return {"status_code": None, "twiml": "", "replies": [], "error": str(exc)}
        answer = parse_twiml(response.text) if response.is_success else TwimlAnswer()
        for reply in answer.messages:
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
            },
        )
        outcome: dict[str, Any] = {"call_sid": call_sid, "from": customer, "to": rooftop, **result}
        outcome["dial"] = (
            {"number": answer.dial_number, "action": dial_url} if answer.has_dial else None
        )
        if dial_status is not None:
            outcome["dial_result"] = await self.finish_dial(call_sid, dial_status)
        return outcome

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
                customer, ThreadEntry("twiml", f"🔊 {said}", datetime.now(UTC), status="say")
            )
        if not response.is_success:
            self._note(customer, f"Pitwall answered HTTP {response.status_code}")
        return {
            "status_code": response.status_code,
            "twiml": response.text,
            "says": answer.says,
            "answer": answer,
        }
