"""CDK Global through Fortellis' Service Repair Order API (``kind = "cdk"``).

Wire format (as spoken by ``fakes/cdk_fake.py``):

- Token: ``POST {token_url}`` form ``grant_type=client_credentials`` with HTTP
  Basic ``client_id:client_secret`` -> ``{"access_token", "expires_in"}``. The
  token is cached until 60 s (or a tenth of its life, if shorter) before it
  expires, and refreshed once if a call answers 401 anyway (revoked early).
- Every call: ``Authorization: Bearer``, ``Subscription-Id`` (the dealer),
  ``Request-Id`` (a fresh UUID per attempt, for CDK support to trace).
- ``GET /repair-orders/v1/open/delta?startDate=&endDate=`` (ISO 8601 UTC) for
  changes since the last poll; ``GET /repair-orders/v1/open`` when there is no
  ``since`` (open, not ``/wip``: an RO waiting for pickup is no longer WIP but
  still needs its "ready" text).
- Paging: ``{"items": [...], "links": [{"rel": "next", "href": ...}]}``; follow
  ``next`` until absent.
- Large pulls answer ``202`` with ``Location`` of an operation; poll it until
  ``{"status": "succeeded", "links": [{"rel": "result", "href": ...}]}`` and page
  through the result the same way. ``failed`` or too many polls -> DmsUnavailable.
- Fields per facts/dms.md. ``openDate`` / ``closeDate`` / ``lastModifiedDate``
  are ISO 8601 (offset-less ones are read in the rooftop's zone).
  ``promisedDate`` + ``promisedTime`` are the store's local wall clock (that is
  what the advisor typed on the RO) and are converted with the rooftop's zone.
- Line ``statusCode``: A approved, O open (customer request, approved at
  write-up), I in progress, C completed, F finished, P pending approval,
  R recommended (pending), D declined.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsAuthError,
    DmsCustomer,
    DmsError,
    DmsLine,
    DmsPage,
    DmsUnavailable,
    DmsVehicle,
    LineStatus,
    MalformedRecord,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)
from integrations.dms.http import DEFAULT_TIMEOUT, RetryPolicy, VendorHttp

LINE_STATUS_CODES: dict[str, LineStatus] = {
    "A": "approved",
    "O": "approved",
    "I": "approved",
    "C": "completed",
    "F": "completed",
    "P": "pending",
    "R": "pending",
    "D": "declined",
}


class CdkAdapter:
    """Reads one CDK dealer (subscription) through Fortellis."""

    kind = "cdk"
    snapshot = False

    def __init__(
        self,
        *,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        subscription_id: str,
        rooftop_slug: str,
        timezone: str,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        operation_poll_seconds: float = 1.0,
        operation_max_polls: int = 30,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self._credentials = (client_id, client_secret)
        self.subscription_id = subscription_id
        self.zone = ZoneInfo(timezone)
        self.clock = clock
        self.http = VendorHttp(
            kind=self.kind,
            rooftop_slug=rooftop_slug,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )
        self.operation_poll_seconds = operation_poll_seconds
        self.operation_max_polls = operation_max_polls
        self._token: str | None = None
        self._token_expires: datetime | None = None

    # -- authentication -------------------------------------------------------------

    def _access_token(self) -> str:
        now = self.clock()
        if self._token is None or self._token_expires is None or now >= self._token_expires:
            response = self.http.request(
                "POST",
                self.token_url,
                data={"grant_type": "client_credentials"},
                auth=self._credentials,
                headers=lambda: {"Accept": "application/json"},
            )
            body = response.json()
            token, lifetime = body.get("access_token"), body.get("expires_in", 3600)
            if not isinstance(token, str) or not isinstance(lifetime, int | float):
                raise self.http.error(DmsAuthError, "token endpoint answered without a token")
            margin = min(60.0, lifetime / 10)
            self._token = token
            self._token_expires = now + timedelta(seconds=lifetime - margin)
        return self._token

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._access_token()}",
            "Subscription-Id": self.subscription_id,
            "Request-Id": str(uuid.uuid4()),
            "Accept": "application/json",
        }

    def _get(self, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request("GET", url, headers=self._headers, **kwargs)
        except DmsAuthError:
            if self._token is None:
                raise
            # A cached token can be revoked before expires_in; one fresh token, then give up.
            self._token = None
            return self.http.request("GET", url, headers=self._headers, **kwargs)

    # -- reading --------------------------------------------------------------------

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """Yield pages of the open set (no ``since``) or of the delta window since ``since``."""
        if since is None:
            url, params = f"{self.base_url}/repair-orders/v1/open", {}
        else:
            url = f"{self.base_url}/repair-orders/v1/open/delta"
            params = {"startDate": p.utc_z(since), "endDate": p.utc_z(self.clock())}
        response = self._get(url, params=params, allow_status=(202,))
        if response.status_code == 202:
            response = self._get(self._await_operation(response))
        while True:
            body = self._json(response)
            items = p.sequence(body.get("items"), "items") if isinstance(body, dict) else None
            if items is None:
                raise self.http.error(DmsError, f"{response.url.path} answered without 'items'")
            yield DmsPage(records=[_raw(item) for item in items])
            next_url = _link(body, "next")
            if next_url is None:
                return
            response = self._get(urljoin(str(response.url), next_url))

    def _await_operation(self, accepted: httpx.Response) -> str:
        """Poll a 202 long-running operation; return the URL of its result."""
        location = accepted.headers.get("Location")
        if not location:
            raise self.http.error(DmsError, "202 Accepted without a Location to poll")
        url = urljoin(str(accepted.url), location)
        for _ in range(self.operation_max_polls):
            status_response = self._get(url)
            body = self._json(status_response)
            status = str(body.get("status", "")).lower() if isinstance(body, dict) else ""
            if status == "succeeded":
                result = _link(body, "result")
                if result is None:
                    raise self.http.error(DmsError, "operation succeeded without a result link")
                return urljoin(url, result)
            if status == "failed":
                raise self.http.error(DmsUnavailable, f"delta operation failed: {body}")
            self.http.retry.sleep(self.operation_poll_seconds)
        raise self.http.error(
            DmsUnavailable, f"delta operation not done after {self.operation_max_polls} polls"
        )

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise self.http.error(DmsError, f"{response.url.path} answered invalid JSON") from exc

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """``GET /repair-orders/v1/{roNumber}``; None when CDK does not know it."""
        response = self._get(f"{self.base_url}/repair-orders/v1/{ro_number}", allow_status=(404,))
        if response.status_code == 404:
            return None
        return _raw(self._json(response))

    def check(self) -> None:
        """Fetch a token and make one delta call over the last minute."""
        now = self.clock()
        self._get(
            f"{self.base_url}/repair-orders/v1/open/delta",
            params={"startDate": p.utc_z(now - timedelta(minutes=1)), "endDate": p.utc_z(now)},
            allow_status=(202,),
        )

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    # -- normalising ----------------------------------------------------------------

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one CDK repair order into Pitwall's type (raises MalformedRecord)."""
        data = record.payload
        opened_at = p.iso_time(data.get("openDate"), "openDate", local=self.zone)
        if opened_at is None:
            raise MalformedRecord("openDate: missing")
        advisor = p.mapping(data.get("serviceAdvisor"), "serviceAdvisor") or {}
        lines: list[DmsLine] = []
        for i, operation in enumerate(p.sequence(data.get("operations"), "operations")):
            lines.extend(_lines(operation, f"operations[{i}]"))
        return RepairOrderRecord(
            ro_number=p.required_text(data.get("roNumber"), "roNumber"),
            raw_status=p.required_text(data.get("statusCode"), "statusCode"),
            opened_at=opened_at,
            updated_at=p.iso_time(
                data.get("lastModifiedDate"), "lastModifiedDate", local=self.zone
            ),
            promised_at=self._promised(data),
            closed_at=p.iso_time(data.get("closeDate"), "closeDate", local=self.zone),
            advisor_id=p.text(advisor.get("id"), "serviceAdvisor.id"),
            advisor_name=p.text(advisor.get("name"), "serviceAdvisor.name"),
            customer=_customer(p.mapping(data.get("customer"), "customer")),
            vehicle=_vehicle(p.mapping(data.get("vehicle"), "vehicle")),
            lines=tuple(lines),
        )

    def _promised(self, data: dict[str, Any]) -> datetime | None:
        day = p.text(data.get("promisedDate"), "promisedDate")
        clock_time = p.text(data.get("promisedTime"), "promisedTime")
        if day is None:
            return None
        if clock_time is None:
            # A date alone is not a promise time; inventing 5 p.m. would send false delay texts.
            return None
        clock_time = clock_time[:5]
        return p.local_time(
            f"{day} {clock_time}", "%Y-%m-%d %H:%M", "promisedDate/promisedTime", self.zone
        )


def _link(body: Any, rel: str) -> str | None:
    links = body.get("links") if isinstance(body, dict) else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


def _raw(item: Any) -> RawRecord:
    if not isinstance(item, dict):
        return RawRecord(payload={"unexpected": item})
    hint = item.get("roNumber")
    return RawRecord(payload=item, ro_number=str(hint) if hint is not None else None)


def _lines(operation: Any, where: str) -> list[DmsLine]:
    line = p.mapping((p.mapping(operation, where) or {}).get("line"), f"{where}.line") or {}
    code = p.required_text(line.get("lineCode"), f"{where}.line.lineCode")
    status_code = p.required_text(line.get("statusCode"), f"{where}.line.statusCode").upper()
    status = LINE_STATUS_CODES.get(status_code)
    if status is None:
        raise MalformedRecord(f"{where}.line.statusCode: unknown line status {status_code!r}")
    labor = p.sequence(line.get("laborOperations"), f"{where}.line.laborOperations")
    result = []
    # One DmsLine per labor operation: declined-work recovery matches on op code.
    for n, item in enumerate(labor):
        op_where = f"{where}.line.laborOperations[{n}]"
        op = p.mapping(item, op_where) or {}
        result.append(
            DmsLine(
                line_code=code if n == 0 else f"{code}.{n + 1}",
                op_code=p.required_text(op.get("opCode"), f"{op_where}.opCode"),
                description=p.text(op.get("description"), f"{op_where}.description") or "",
                amount_cents=p.cents(op.get("sale", "0"), f"{op_where}.sale"),
                status=status,
            )
        )
    return result


def _customer(data: dict[str, Any] | None) -> DmsCustomer | None:
    if data is None:
        return None
    name = p.text(data.get("name"), "customer.name") or ""
    # CDK screens write "LAST, FIRST"; integrators often send "First Last".
    if "," in name:
        last, _, first = (part.strip() for part in name.partition(","))
    else:
        first, _, last = name.rpartition(" ") if " " in name else ("", "", name)
    phones = []
    for i, item in enumerate(p.sequence(data.get("phoneNumbers"), "customer.phoneNumbers")):
        entry = p.mapping(item, f"customer.phoneNumbers[{i}]") or {}
        phone = p.phone(
            entry.get("number"), entry.get("type"), f"customer.phoneNumbers[{i}].number"
        )
        if phone is not None:
            phones.append(phone)
    return DmsCustomer(
        external_id=p.required_text(data.get("customerId"), "customer.customerId"),
        first_name=first or None,
        last_name=last or None,
        phones=tuple(phones),
        email=p.text(data.get("email"), "customer.email"),
        language=p.language(data.get("preferredLanguage")),
        sms_consent=p.consent(data.get("smsOptIn"), "customer.smsOptIn"),
        marketing_consent=p.consent(data.get("marketingOptIn"), "customer.marketingOptIn"),
    )


def _vehicle(data: dict[str, Any] | None) -> DmsVehicle | None:
    if data is None:
        return None
    return DmsVehicle(
        vin=p.vin(data.get("vin")),
        year=p.integer(data.get("year"), "vehicle.year", low=1900, high=2100),
        make=p.text(data.get("make"), "vehicle.make"),
        model=p.text(data.get("model"), "vehicle.model"),
        mileage=p.integer(data.get("mileageIn"), "vehicle.mileageIn"),
    )
