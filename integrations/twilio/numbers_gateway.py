"""Twilio adapter for :class:`~integrations.twilio.numbers.PhoneNumberDirectory`.

IncomingPhoneNumbers live under ``api.twilio.com/2010-04-01``; Messaging Services
under ``messaging.twilio.com/v1``. When ``api_url`` is not Twilio's own (the local
sandbox, a test double) both are sent to ``api_url``; the sandbox serves both.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from integrations.twilio.gateway import DEFAULT_API_URL, ThreadLocalHttpClient
from integrations.twilio.numbers import (
    MessagingServiceRecord,
    NumbersError,
    PhoneNumberRecord,
)

__all__ = ["TwilioPhoneNumbers"]

_PAGE_SIZE = 100


def _number(instance: Any) -> PhoneNumberRecord:
    return PhoneNumberRecord(
        sid=str(instance.sid),
        phone_number=str(instance.phone_number or ""),
        sms_url=str(instance.sms_url or ""),
        voice_url=str(instance.voice_url or ""),
        status_callback=str(instance.status_callback or ""),
    )


def _service(instance: Any, phone_numbers: tuple[str, ...] = ()) -> MessagingServiceRecord:
    return MessagingServiceRecord(
        sid=str(instance.sid),
        friendly_name=str(instance.friendly_name or ""),
        inbound_request_url=str(instance.inbound_request_url or ""),
        use_inbound_webhook_on_number=bool(instance.use_inbound_webhook_on_number),
        phone_numbers=phone_numbers,
    )


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


class TwilioPhoneNumbers:
    """Reads and re-points the account's numbers with the official client."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
    ) -> None:
        self._http = ThreadLocalHttpClient(timeout=timeout)
        client = Client(account_sid, auth_token, http_client=self._http)
        client.edge = None
        client.region = None
        base = api_url.rstrip("/")
        client.api.base_url = base
        if base != DEFAULT_API_URL:
            # A stand-in serves every Twilio domain from one base URL.
            client.messaging.base_url = base
        self._account = client.api.v2010.accounts(account_sid)
        self._client = client

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwilioRestException as exc:
            status = int(exc.status) if exc.status else None
            raise NumbersError(
                f"twilio {action} failed: {exc.msg}",
                auth=status in (401, 403) or exc.code == 20003,
                not_found=status == 404,
                http_status=status,
            ) from exc
        except requests.RequestException as exc:
            raise NumbersError(f"twilio {action}: no answer ({exc})") from exc
        except TwilioException as exc:
            # A failed list page arrives as TwilioException("Unable to fetch page", response).
            response = exc.args[1] if len(exc.args) > 1 else None
            status = getattr(response, "status_code", None)
            detail = _error_message(getattr(response, "text", "")) or str(exc.args[0])
            raise NumbersError(
                f"twilio {action} failed: {detail}",
                auth=status in (401, 403),
                not_found=status == 404,
                http_status=status,
            ) from exc

    def list_numbers(self) -> list[PhoneNumberRecord]:
        """Every IncomingPhoneNumber of the account (all pages)."""
        found = self._call(
            "phone number list", self._account.incoming_phone_numbers.list, page_size=_PAGE_SIZE
        )
        return [_number(item) for item in found]

    def update_number(
        self, sid: str, *, sms_url: str, voice_url: str, status_callback: str
    ) -> PhoneNumberRecord:
        """Point the number's SMS, voice and status-callback URLs (POST each) here."""
        updated = self._call(
            "phone number update",
            self._account.incoming_phone_numbers(sid).update,
            sms_url=sms_url,
            sms_method="POST",
            voice_url=voice_url,
            voice_method="POST",
            status_callback=status_callback,
            status_callback_method="POST",
        )
        return _number(updated)

    def fetch_service(self, sid: str) -> MessagingServiceRecord:
        """The Messaging Service ``sid`` (MG...)."""
        found = self._call("messaging service fetch", self._client.messaging.v1.services(sid).fetch)
        return _service(found)

    def update_service(self, sid: str, *, inbound_request_url: str) -> MessagingServiceRecord:
        """Send the service's inbound messages to ``inbound_request_url`` (POST)."""
        updated = self._call(
            "messaging service update",
            self._client.messaging.v1.services(sid).update,
            inbound_request_url=inbound_request_url,
            inbound_method="POST",
        )
        return _service(updated)

    def list_services(self) -> list[MessagingServiceRecord]:
        """Every Messaging Service (all pages), each with its numbers: one call per service."""
        services = self._call(
            "messaging service list", self._client.messaging.v1.services.list, page_size=_PAGE_SIZE
        )
        found = []
        for service in services:
            members = self._call(
                "messaging service numbers",
                self._client.messaging.v1.services(service.sid).phone_numbers.list,
                page_size=_PAGE_SIZE,
            )
            numbers = tuple(str(m.phone_number) for m in members if m.phone_number)
            found.append(_service(service, numbers))
        return found

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()
