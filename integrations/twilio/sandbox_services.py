"""Messaging Services in the sandbox: ``messaging.twilio.com/v1/Services`` and their numbers.

The shapes follow the official client's ``twilio.rest.messaging.v1.service`` (the fields it
reads, the ``meta.key`` paging envelope). A number in a service gets its inbound texts at
the service's ``inbound_request_url`` unless ``use_inbound_webhook_on_number`` is set:
:meth:`ServiceDirectory.inbound_route` decides, as Twilio does, so a sandbox text can miss
Pitwall exactly as a real one would. Services start pointed at Pitwall.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from integrations.twilio.sandbox_config import SandboxConfig, new_sid
from integrations.twilio.sandbox_views import _auth_failure, twilio_error

__all__ = ["InboundRoute", "MessagingService", "ServiceDirectory", "services_router"]

_BASE = "https://messaging.twilio.com/v1/Services"


@dataclass(frozen=True)
class MessagingService:
    sid: str
    friendly_name: str
    inbound_request_url: str
    use_inbound_webhook_on_number: bool
    numbers: tuple[str, ...] = field(default=())
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class InboundRoute:
    """Where Twilio posts a text to one of the account's numbers."""

    url: str | None  # None: the service drops it (no inbound URL)
    service_sid: str | None = None


class ServiceDirectory:
    """The account's Messaging Services; thread-safe, reset with the sandbox."""

    def __init__(self, config: SandboxConfig, pitwall_sms_url: str) -> None:
        self._config = config
        self._pitwall_sms_url = pitwall_sms_url
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._services = {
                sid: MessagingService(
                    sid=sid,
                    friendly_name=f"Sandbox service {number}",
                    inbound_request_url=self._pitwall_sms_url,
                    use_inbound_webhook_on_number=False,
                    numbers=(number,),
                )
                for sid, number in self._config.messaging_services.items()
            }

    def list(self) -> list[MessagingService]:
        with self._lock:
            return list(self._services.values())

    def get(self, sid: str) -> MessagingService | None:
        with self._lock:
            return self._services.get(sid)

    def add(self, numbers: tuple[str, ...], **settings: Any) -> MessagingService:
        """A new service holding ``numbers`` (tests: a service Pitwall's config does not name)."""
        service = MessagingService(
            sid=new_sid("MG"),
            friendly_name=str(settings.get("friendly_name", "Added service")),
            inbound_request_url=str(settings.get("inbound_request_url", "")),
            use_inbound_webhook_on_number=bool(settings.get("use_inbound_webhook_on_number")),
            numbers=numbers,
        )
        with self._lock:
            self._services[service.sid] = service
        return service

    def update(self, sid: str, **changes: Any) -> MessagingService | None:
        with self._lock:
            found = self._services.get(sid)
            if found is None:
                return None
            self._services[sid] = replace(found, **changes)
            return self._services[sid]

    def inbound_route(self, number: str) -> InboundRoute:
        """Twilio's rule: a service number's texts go to the service unless it defers."""
        bare = number.removeprefix("whatsapp:")
        with self._lock:
            service = next((s for s in self._services.values() if bare in s.numbers), None)
        if service is None or service.use_inbound_webhook_on_number:
            return InboundRoute(self._pitwall_sms_url)
        return InboundRoute(service.inbound_request_url or None, service.sid)


def _service_json(config: SandboxConfig, service: MessagingService) -> dict[str, Any]:
    stamp = service.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "sid": service.sid,
        "account_sid": config.account_sid,
        "friendly_name": service.friendly_name,
        "date_created": stamp,
        "date_updated": stamp,
        "inbound_request_url": service.inbound_request_url or None,
        "inbound_method": "POST",
        "fallback_url": None,
        "fallback_method": "POST",
        "status_callback": None,
        "sticky_sender": True,
        "mms_converter": True,
        "smart_encoding": True,
        "scan_message_content": "inherit",
        "fallback_to_long_code": False,
        "area_code_geomatch": True,
        "synchronous_validation": False,
        "validity_period": 14400,
        "url": f"{_BASE}/{service.sid}",
        "links": {"phone_numbers": f"{_BASE}/{service.sid}/PhoneNumbers"},
        "usecase": "notifications",
        "us_app_to_person_registered": True,
        "use_inbound_webhook_on_number": service.use_inbound_webhook_on_number,
    }


def _meta(request: Request, key: str) -> dict[str, Any]:
    url = str(request.url)
    return {
        "page": 0,
        "page_size": 50,
        "first_page_url": url,
        "previous_page_url": None,
        "url": url,
        "next_page_url": None,
        "key": key,
    }


def _truthy(value: object) -> bool:
    return str(value).strip().lower() == "true"


def services_router(
    config: SandboxConfig, services: ServiceDirectory, number_sid: Any
) -> APIRouter:
    """``/v1/Services`` (list, fetch, update) and ``/v1/Services/{sid}/PhoneNumbers``.

    ``number_sid(e164)`` gives the account's PN SID for a number.
    """
    router = APIRouter(prefix="/v1/Services")

    def refused(request: Request) -> Response | None:
        return _auth_failure(request, config, config.account_sid)

    def missing(request: Request) -> Response:
        return twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")

    @router.get("")
    async def list_services(request: Request) -> Response:
        if (failure := refused(request)) is not None:
            return failure
        items = [_service_json(config, s) for s in services.list()]
        return JSONResponse({"services": items, "meta": _meta(request, "services")})

    @router.get("/{sid}")
    async def fetch_service(sid: str, request: Request) -> Response:
        if (failure := refused(request)) is not None:
            return failure
        found = services.get(sid)
        return missing(request) if found is None else JSONResponse(_service_json(config, found))

    @router.post("/{sid}")
    async def update_service(sid: str, request: Request) -> Response:
        if (failure := refused(request)) is not None:
            return failure
        form = await request.form()
        changes: dict[str, Any] = {}
        if "InboundRequestUrl" in form:
            changes["inbound_request_url"] = str(form["InboundRequestUrl"])
        if "UseInboundWebhookOnNumber" in form:
            changes["use_inbound_webhook_on_number"] = _truthy(form["UseInboundWebhookOnNumber"])
        if "FriendlyName" in form:
            changes["friendly_name"] = str(form["FriendlyName"])
        found = services.update(sid, **changes)
        return missing(request) if found is None else JSONResponse(_service_json(config, found))

    @router.get("/{sid}/PhoneNumbers")
    async def service_numbers(sid: str, request: Request) -> Response:
        if (failure := refused(request)) is not None:
            return failure
        found = services.get(sid)
        if found is None:
            return missing(request)
        stamp = found.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        items = [
            {
                "sid": number_sid(number) or new_sid("PN"),
                "account_sid": config.account_sid,
                "service_sid": sid,
                "date_created": stamp,
                "date_updated": stamp,
                "phone_number": number,
                "country_code": "US",
                "capabilities": ["SMS", "MMS", "Voice"],
                "url": f"{_BASE}/{sid}/PhoneNumbers/{number_sid(number)}",
            }
            for number in found.numbers
        ]
        return JSONResponse({"phone_numbers": items, "meta": _meta(request, "phone_numbers")})

    return router
