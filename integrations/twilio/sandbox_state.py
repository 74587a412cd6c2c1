"""In-memory, thread-safe store behind the Twilio sandbox.

Holds what a fake Twilio account knows: messages, phone numbers, opted-out
recipients, the conversation threads the phone view shows, and queued faults.
The event loop, the callback worker and test threads all touch it, so every
public method takes the one lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from integrations.twilio.sandbox_config import API_VERSION, new_sid, rfc2822

FAULT_KINDS = frozenset(
    {
        "500_before",
        "500_after",
        "429",
        "delay_ms",
        "error",
        "reset",
        "duplicate",
        "out_of_order",
        "fail",
    }
)


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by the next message create."""

    kind: str
    status: int | None = None
    code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    delay_ms: int = 0
    error_code: int | None = None
    callback_status: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from the ``/_sandbox/faults`` JSON shape; raise ValueError if bad."""
        kind = str(data.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if kind == "error" and data.get("code") is None:
            raise ValueError("fault 'error' needs a Twilio 'code' (e.g. 21610)")

        def opt_int(name: str) -> int | None:
            value = data.get(name)
            return None if value is None else int(value)

        retry_after = data.get("retry_after")
        return cls(
            kind=kind,
            status=opt_int("status"),
            code=opt_int("code"),
            message=data.get("message"),
            retry_after=None if retry_after is None else float(retry_after),
            delay_ms=int(data.get("delay_ms", data.get("ms", 0)) or 0),
            error_code=opt_int("error_code"),
            callback_status=data.get("callback_status"),
        )


@dataclass
class StoredMessage:
    """A message as the sandbox account holds it."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str | None
    direction: str = "outbound-api"
    status: str = "queued"
    messaging_service_sid: str | None = None
    content_sid: str | None = None
    content_variables: str | None = None
    status_callback: str | None = None
    num_segments: int = 1
    error_code: int | None = None
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    date_updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    date_sent: datetime | None = None
    seq: int = 0

    def uri(self) -> str:
        """The resource path Twilio reports in ``uri``."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        """The Message resource exactly as Twilio's REST API renders it."""
        base = self.uri()[: -len(".json")]
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri(),
        }


@dataclass(frozen=True)
class ThreadEntry:
    """One line in the phone view: a text, a TwiML reply, or a call event."""

    kind: str  # outbound | inbound | twiml | carrier | call | note
    text: str
    at: datetime
    sid: str | None = None
    status: str | None = None


@dataclass
class PhoneNumber:
    """An IncomingPhoneNumber the sandbox account owns."""

    sid: str
    phone_number: str
    friendly_name: str
    sms_url: str = ""
    voice_url: str = ""
    status_callback: str = ""


class SandboxState:
    """Everything the sandbox remembers; all access goes through the lock."""

    def __init__(self, phone_numbers: tuple[str, ...] = ()) -> None:
        self._lock = threading.RLock()
        self._initial_numbers = phone_numbers
        self.version = 0
        self._reset_locked()

    def _reset_locked(self) -> None:
        self.messages: dict[str, StoredMessage] = {}
        self.faults: deque[Fault] = deque()
        self.opted_out: set[str] = set()
        self.blocked_pairs: set[tuple[str, str]] = set()  # (sender, customer) after STOP
        self.threads: dict[str, list[ThreadEntry]] = {}
        self.thread_rooftop: dict[str, str] = {}
        self.last_whatsapp_inbound: dict[str, datetime] = {}
        self.callbacks: list[dict[str, Any]] = []
        self.create_requests: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.numbers: dict[str, PhoneNumber] = {
            pn.sid: pn
            for pn in (
                PhoneNumber(new_sid("PN"), number, number) for number in self._initial_numbers
            )
        }
        self._seq = 0
        self.version += 1

    def reset(self) -> None:
        """Forget messages, threads, faults and opt-outs; keep configured numbers."""
        with self._lock:
            self._reset_locked()

    def touch(self) -> None:
        """Bump the version the phone view polls for."""
        with self._lock:
            self.version += 1

    # Faults -------------------------------------------------------------------
    def add_faults(self, fault: Fault, count: int = 1) -> None:
        """Queue ``count`` copies of ``fault`` for the next creates."""
        with self._lock:
            self.faults.extend([fault] * count)

    def pop_fault(self) -> Fault | None:
        """Take the fault for this create, if any."""
        with self._lock:
            return self.faults.popleft() if self.faults else None

    # Messages -----------------------------------------------------------------
    def add_message(self, message: StoredMessage) -> StoredMessage:
        """Store a message; outbound ones also land in the customer's thread."""
        with self._lock:
            self._seq += 1
            message.seq = self._seq
            self.messages[message.sid] = message
            if message.direction.startswith("outbound"):
                self._append_locked(
                    message.to,
                    ThreadEntry(
                        "outbound",
                        message.body or f"[template {message.content_sid}]",
                        message.date_created,
                        sid=message.sid,
                        status=message.status,
                    ),
                )
                if message.from_:
                    self.thread_rooftop[message.to] = message.from_
            self.version += 1
            return replace(message)

    def record_create_request(self, params: dict[str, Any], outcome: str) -> None:
        """Remember every create attempt, for tests and benchmarks counting retries."""
        with self._lock:
            self.create_requests.append({"params": params, "outcome": outcome})

    def get_message(self, sid: str) -> StoredMessage | None:
        """A copy of one message, or None."""
        with self._lock:
            found = self.messages.get(sid)
            return replace(found) if found else None

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Move a message to ``status`` (the sandbox's own clock, not a callback order)."""
        with self._lock:
            message = self.messages.get(sid)
            if message is None:
                return
            now = datetime.now(UTC)
            message.status = status
            message.date_updated = now
            if status in {"sent", "delivered", "undelivered", "failed"} and not message.date_sent:
                message.date_sent = now
            if error_code is not None:
                message.error_code = error_code
            thread = self.threads.get(message.to, [])
            for index, entry in enumerate(thread):
                if entry.sid == sid:
                    thread[index] = replace(entry, status=status)
            self.version += 1

    def list_messages(
        self, *, to: str | None = None, from_: str | None = None
    ) -> list[StoredMessage]:
        """Messages newest first, filtered like Twilio's ``To``/``From`` query parameters."""
        with self._lock:
            found = [
                replace(m)
                for m in self.messages.values()
                if (to is None or m.to == to) and (from_ is None or m.from_ == from_)
            ]
        return sorted(found, key=lambda m: (m.date_created, m.seq), reverse=True)

    # Threads for the phone view -------------------------------------------------
    def _append_locked(self, customer: str, entry: ThreadEntry) -> None:
        self.threads.setdefault(customer, []).append(entry)

    def append_thread(self, customer: str, entry: ThreadEntry) -> None:
        """Add a line to a customer's thread."""
        with self._lock:
            self._append_locked(customer, entry)
            self.version += 1

    def snapshot_threads(self) -> dict[str, list[ThreadEntry]]:
        """A copy of every thread, for rendering."""
        with self._lock:
            return {customer: list(entries) for customer, entries in self.threads.items()}

    def rooftop_for(self, customer: str) -> str | None:
        """The number that last texted this customer (what a reply goes to)."""
        with self._lock:
            return self.thread_rooftop.get(customer)

    def set_rooftop(self, customer: str, number: str) -> None:
        """Remember which rooftop number a customer talks to."""
        with self._lock:
            self.thread_rooftop.setdefault(customer, number)

    # Consent, as Twilio's opt-out handling sees it ------------------------------
    def set_opted_out(self, number: str, opted_out: bool, *, sender: str | None = None) -> None:
        """Record a STOP (or START) the customer typed: blocked from ``sender`` (a number or
        a Messaging Service), or from every sender of the account when it is None."""
        with self._lock:
            if sender is None:
                (self.opted_out.add if opted_out else self.opted_out.discard)(number)
            else:
                pair = (sender, number)
                (self.blocked_pairs.add if opted_out else self.blocked_pairs.discard)(pair)
            self.version += 1

    def is_opted_out(self, number: str, *, sender: str | None = None) -> bool:
        """Whether the sandbox refuses sends from ``sender`` to ``number`` with 21610."""
        with self._lock:
            return number in self.opted_out or (sender or "", number) in self.blocked_pairs

    def note_whatsapp_inbound(self, customer: str, at: datetime) -> None:
        """Open the 24 h WhatsApp session window for ``customer``."""
        with self._lock:
            self.last_whatsapp_inbound[customer] = at

    def whatsapp_window_open(self, customer: str, now: datetime) -> bool:
        """True when ``customer`` wrote on WhatsApp within the last 24 hours."""
        with self._lock:
            last = self.last_whatsapp_inbound.get(customer)
        return last is not None and (now - last).total_seconds() < 24 * 3600

    def record_callback(self, entry: dict[str, Any]) -> None:
        """Remember a status callback the sandbox posted."""
        with self._lock:
            self.callbacks.append(entry)

    def save_call(self, call_sid: str, call: dict[str, Any]) -> None:
        """Remember a call placed from the phone view (for its dial-status step)."""
        with self._lock:
            self.calls[call_sid] = dict(call)
            self.version += 1

    def get_call(self, call_sid: str) -> dict[str, Any] | None:
        """A copy of a remembered call, or None."""
        with self._lock:
            call = self.calls.get(call_sid)
            return dict(call) if call else None

    def calls_snapshot(self) -> dict[str, dict[str, Any]]:
        """Copies of every remembered call, by CallSid."""
        with self._lock:
            return {sid: dict(call) for sid, call in self.calls.items()}

    # Phone numbers ---------------------------------------------------------------
    def list_numbers(self) -> list[PhoneNumber]:
        """Copies of the account's phone numbers."""
        with self._lock:
            return [replace(pn) for pn in self.numbers.values()]

    def add_number(self, phone_number: str) -> PhoneNumber:
        """Buy a number (IncomingPhoneNumbers create); an owned number is returned as is."""
        with self._lock:
            for existing in self.numbers.values():
                if existing.phone_number == phone_number:
                    return replace(existing)
            number = PhoneNumber(new_sid("PN"), phone_number, phone_number)
            self.numbers[number.sid] = number
            return replace(number)

    def update_number(self, sid: str, changes: dict[str, str]) -> PhoneNumber | None:
        """Apply SmsUrl/VoiceUrl/StatusCallback changes; None when the SID is unknown."""
        with self._lock:
            number = self.numbers.get(sid)
            if number is None:
                return None
            for name, value in changes.items():
                setattr(number, name, value)
            return replace(number)

    def dump(self) -> dict[str, Any]:
        """Everything received, as JSON-ready data (``GET /_sandbox/messages``)."""
        with self._lock:
            return {
                "messages": [m.to_json() for m in self.messages.values()],
                "create_requests": list(self.create_requests),
                "callbacks": list(self.callbacks),
                "faults_pending": len(self.faults),
                "opted_out": sorted(self.opted_out),
                "blocked": sorted(f"{sender} -> {number}" for sender, number in self.blocked_pairs),
            }
