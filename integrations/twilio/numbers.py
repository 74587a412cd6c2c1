"""The phone-number port: which numbers the account owns and where their webhooks point.

`pitwall doctor` reads it and `pitwall twilio connect` writes it. The Twilio
adapter is ``numbers_gateway.py``; nothing here imports ``twilio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "MessagingServiceRecord",
    "NumbersError",
    "PhoneNumberDirectory",
    "PhoneNumberRecord",
]


@dataclass(frozen=True)
class PhoneNumberRecord:
    """An IncomingPhoneNumber: its SID, the E.164 number and its three webhook URLs."""

    sid: str
    phone_number: str
    sms_url: str
    voice_url: str
    status_callback: str


@dataclass(frozen=True)
class MessagingServiceRecord:
    """A Messaging Service's inbound settings.

    When ``use_inbound_webhook_on_number`` is true Twilio calls each number's own
    SmsUrl and ignores ``inbound_request_url``.
    """

    sid: str
    friendly_name: str
    inbound_request_url: str
    use_inbound_webhook_on_number: bool
    # The service's sender numbers (E.164), when read with :meth:`list_services`.
    phone_numbers: tuple[str, ...] = ()


class NumbersError(Exception):
    """A number lookup or update the provider refused or did not answer.

    ``auth`` is true when the credentials were rejected; ``not_found`` when the
    resource (a number SID, a Messaging Service) does not exist in the account.
    """

    def __init__(
        self,
        message: str,
        *,
        auth: bool = False,
        not_found: bool = False,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.auth = auth
        self.not_found = not_found
        self.http_status = http_status


@runtime_checkable
class PhoneNumberDirectory(Protocol):
    """The account's phone numbers and Messaging Services, read and re-pointed."""

    def list_numbers(self) -> list[PhoneNumberRecord]:
        """Every IncomingPhoneNumber of the account; raise :class:`NumbersError`."""
        ...

    def update_number(
        self, sid: str, *, sms_url: str, voice_url: str, status_callback: str
    ) -> PhoneNumberRecord:
        """Point one number's SmsUrl, VoiceUrl and StatusCallback (all POST) at these URLs."""
        ...

    def fetch_service(self, sid: str) -> MessagingServiceRecord:
        """One Messaging Service; raise :class:`NumbersError` (``not_found``) if absent."""
        ...

    def update_service(self, sid: str, *, inbound_request_url: str) -> MessagingServiceRecord:
        """Set a Messaging Service's inbound request URL (POST)."""
        ...

    def list_services(self) -> list[MessagingServiceRecord]:
        """Every Messaging Service of the account, each with its ``phone_numbers``.

        An A2P 10DLC number must sit in one, and then its inbound texts follow the service's
        settings, whatever the number's own SmsUrl says: this is how doctor finds that out.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
