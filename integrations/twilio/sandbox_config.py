"""Configuration and small wire-format helpers shared by the sandbox modules."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

API_VERSION = "2010-04-01"

# GSM 03.38 basic set; the extension set costs two septets each.
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox account looks and behaves.

    ``pitwall_public_url`` is where inbound webhooks go
    (``{url}/webhooks/twilio/messages``, ``/voice``, ``/voice/dial-status``).
    ``messaging_services`` maps an MG SID to the number it sends from.
    ``whatsapp_window`` makes free-form WhatsApp outside 24 h fail with 63016,
    as Twilio does (asynchronously, in the status callback).
    """

    account_sid: str
    auth_token: str
    pitwall_public_url: str = "http://127.0.0.1:8000"
    latency_ms: int = 0
    callbacks: bool = True
    callback_delay_s: float = 0.05
    phone_numbers: tuple[str, ...] = ()
    landlines: frozenset[str] = frozenset()
    messaging_services: Mapping[str, str] = field(default_factory=dict)
    whatsapp_window: bool = False
    friendly_name: str = "Pitwall Sandbox"
    # Senders (numbers or MG SIDs) whose keywords Advanced Opt-Out answers: their inbound
    # STOP/START/HELP carry OptOutType. Every other number gets Twilio's standard handling:
    # Twilio answers its keywords itself and the webhook does not say so.
    advanced_opt_out: frozenset[str] = frozenset()

    def sender_of(self, number: str) -> str:
        """What Twilio's opt-out block is keyed by: the number's Messaging Service, else it."""
        bare = number.removeprefix("whatsapp:")
        return next((sid for sid, n in self.messaging_services.items() if n == bare), bare)

    def has_advanced_opt_out(self, number: str) -> bool:
        bare = number.removeprefix("whatsapp:")
        return bare in self.advanced_opt_out or self.sender_of(bare) in self.advanced_opt_out

    def webhook_url(self, path: str) -> str:
        """Absolute Pitwall URL for a webhook path such as ``/webhooks/twilio/voice``."""
        return self.pitwall_public_url.rstrip("/") + path


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two-letter prefix + 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format, e.g. ``Mon, 23 Nov 2026 11:22:33 +0000``."""
    return format_datetime(moment.astimezone(UTC)) if moment else None


def count_segments(body: str | None) -> int:
    """Segments Twilio bills: GSM-7 160/153 septets, otherwise UCS-2 70/67 units."""
    if not body:
        return 1
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENDED for ch in body):
        septets = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in body)
        return 1 if septets <= 160 else -(-septets // 153)
    # UTF-16 code units: characters outside the BMP (emoji) take two.
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)
