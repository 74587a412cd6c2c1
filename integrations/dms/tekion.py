"""Tekion APC REST (``kind = "tekion"``).

Wire format (as spoken by ``fakes/tekion_fake.py``):

- ``POST {base_url}/repair-orders:search`` with ``Authorization: Bearer`` and
  ``dealerId``; body ``{"filter": {...}, "pageSize": n, "pageToken": t}`` where
  the filter is ``{"modifiedTime": {"gt": <epoch ms>}}`` for changes,
  ``{"openOnly": true}`` for the open set, or ``{"roNumber": "..."}``.
  Answer: ``{"data": [...], "meta": {"nextPageToken": t | null}}``.
- Records: ``roNumber``, ``status``, ``createdTime`` / ``modifiedTime`` /
  ``promisedTime`` / ``closedTime`` (epoch ms, UTC by definition),
  ``serviceAdvisor {id, name}``, ``customer {id, firstName, lastName,
  phones [{phoneType: MOBILE|HOME|WORK, number}], email, preferredLanguage,
  consents {sms, marketing: OPTED_IN|OPTED_OUT}}``, ``vehicle {vin, year, make,
  model, odometer {value, unit}}``, ``jobs [{jobNumber, opcode, description,
  status: OPEN|IN_PROGRESS|COMPLETED, customerApproval:
  APPROVED|DECLINED|PENDING, price {amount: <integer cents>, currency}}]``.
- About 1,500 calls per 15 minutes per dealer: a token bucket paces every
  attempt, and a 429's Retry-After is honoured by the shared retry policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsCustomer,
    DmsError,
    DmsLine,
    DmsPage,
    DmsVehicle,
    LineStatus,
    MalformedRecord,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)
from integrations.dms.http import DEFAULT_TIMEOUT, RetryPolicy, VendorHttp
from integrations.dms.pacing import TokenBucket

PAGE_SIZE = 100
_APPROVALS = {"APPROVED", "DECLINED", "PENDING"}


class TekionAdapter:
    """Reads one Tekion dealer."""

    kind = "tekion"
    snapshot = False

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        dealer_id: str,
        rooftop_slug: str,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        calls_per_15_minutes: int = 1500,
        pacer: TokenBucket | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.dealer_id = dealer_id
        self.clock = clock
        self.page_size = page_size
        self.http = VendorHttp(
            kind=self.kind,
            rooftop_slug=rooftop_slug,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )
        self.pacer = pacer or TokenBucket(
            calls=calls_per_15_minutes,
            per_seconds=900,
            burst=min(50, calls_per_15_minutes // 2),
            clock=time.monotonic,
            sleep=self.http.retry.sleep,
        )

    def _headers(self) -> dict[str, str]:
        # Pacing per attempt: retries spend the same budget as first tries.
        self.pacer.acquire()
        return {
            "Authorization": f"Bearer {self._token}",
            "dealerId": self.dealer_id,
            "Accept": "application/json",
        }

    def _search(self, filter_: dict[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        """Yield each answer page of a search, following ``nextPageToken``."""
        body: dict[str, Any] = {"filter": filter_, "pageSize": page_size}
        while True:
            response = self.http.request(
                "POST", f"{self.base_url}/repair-orders:search", json=body, headers=self._headers
            )
            try:
                answer = response.json()
            except ValueError as exc:
                raise self.http.error(DmsError, "search answered invalid JSON") from exc
            if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
                raise self.http.error(DmsError, "search answer has no 'data' list")
            yield answer
            meta = answer.get("meta") if isinstance(answer.get("meta"), dict) else {}
            token = meta.get("nextPageToken") if meta else None
            if not token:
                return
            body["pageToken"] = token

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """ROs modified after ``since`` (epoch ms), or the open set when None."""
        if since is None:
            filter_: dict[str, Any] = {"openOnly": True}
        else:
            filter_ = {"modifiedTime": {"gt": int(since.timestamp() * 1000)}}
        for answer in self._search(filter_, self.page_size):
            yield DmsPage(records=[_raw(item) for item in answer["data"]])

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """Search by RO number; None when Tekion has no such RO."""
        for answer in self._search({"roNumber": ro_number}, 1):
            return _raw(answer["data"][0]) if answer["data"] else None
        return None

    def check(self) -> None:
        """One authenticated search for a single RO."""
        next(self._search({"openOnly": True}, 1))

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one Tekion repair order into Pitwall's type (raises MalformedRecord)."""
        data = record.payload
        opened_at = p.epoch_ms(data.get("createdTime"), "createdTime")
        if opened_at is None:
            raise MalformedRecord("createdTime: missing")
        advisor = p.mapping(data.get("serviceAdvisor"), "serviceAdvisor") or {}
        return RepairOrderRecord(
            ro_number=p.required_text(data.get("roNumber"), "roNumber"),
            raw_status=p.required_text(data.get("status"), "status"),
            opened_at=opened_at,
            updated_at=p.epoch_ms(data.get("modifiedTime"), "modifiedTime"),
            promised_at=p.epoch_ms(data.get("promisedTime"), "promisedTime"),
            closed_at=p.epoch_ms(data.get("closedTime"), "closedTime"),
            advisor_id=p.text(advisor.get("id"), "serviceAdvisor.id"),
            advisor_name=p.text(advisor.get("name"), "serviceAdvisor.name"),
            customer=_customer(p.mapping(data.get("customer"), "customer")),
            vehicle=_vehicle(p.mapping(data.get("vehicle"), "vehicle")),
            lines=tuple(
                _job(job, f"jobs[{i}]")
                for i, job in enumerate(p.sequence(data.get("jobs"), "jobs"))
            ),
        )


def _raw(item: Any) -> RawRecord:
    if not isinstance(item, dict):
        return RawRecord(payload={"unexpected": item})
    hint = item.get("roNumber")
    return RawRecord(payload=item, ro_number=str(hint) if hint is not None else None)


def _job(item: Any, where: str) -> DmsLine:
    job = p.mapping(item, where) or {}
    approval = p.required_text(job.get("customerApproval"), f"{where}.customerApproval").upper()
    if approval not in _APPROVALS:
        raise MalformedRecord(f"{where}.customerApproval: unknown approval {approval!r}")
    work = (p.text(job.get("status"), f"{where}.status") or "").upper()
    status: LineStatus
    if approval == "DECLINED":
        status = "declined"
    elif approval == "PENDING":
        status = "pending"
    else:
        status = "completed" if work == "COMPLETED" else "approved"
    price = p.mapping(job.get("price"), f"{where}.price")
    return DmsLine(
        line_code=p.required_text(job.get("jobNumber"), f"{where}.jobNumber"),
        op_code=p.required_text(job.get("opcode"), f"{where}.opcode"),
        description=p.text(job.get("description"), f"{where}.description") or "",
        amount_cents=p.integer_cents(price.get("amount") if price else 0, f"{where}.price.amount"),
        status=status,
    )


def _customer(data: dict[str, Any] | None) -> DmsCustomer | None:
    if data is None:
        return None
    phones = []
    for i, item in enumerate(p.sequence(data.get("phones"), "customer.phones")):
        entry = p.mapping(item, f"customer.phones[{i}]") or {}
        phone = p.phone(entry.get("number"), entry.get("phoneType"), f"customer.phones[{i}].number")
        if phone is not None:
            phones.append(phone)
    consents = p.mapping(data.get("consents"), "customer.consents") or {}
    return DmsCustomer(
        external_id=p.required_text(data.get("id"), "customer.id"),
        first_name=p.text(data.get("firstName"), "customer.firstName"),
        last_name=p.text(data.get("lastName"), "customer.lastName"),
        phones=tuple(phones),
        email=p.text(data.get("email"), "customer.email"),
        language=p.language(data.get("preferredLanguage")),
        sms_consent=p.consent(consents.get("sms"), "customer.consents.sms"),
        marketing_consent=p.consent(consents.get("marketing"), "customer.consents.marketing"),
    )


def _vehicle(data: dict[str, Any] | None) -> DmsVehicle | None:
    if data is None:
        return None
    odometer = p.mapping(data.get("odometer"), "vehicle.odometer") or {}
    mileage = p.integer(odometer.get("value"), "vehicle.odometer.value")
    if mileage is not None and str(odometer.get("unit", "MI")).upper() == "KM":
        mileage = round(mileage / 1.609344)  # Pitwall shows miles; a Canadian store sends km
    return DmsVehicle(
        vin=p.vin(data.get("vin")),
        year=p.integer(data.get("year"), "vehicle.year", low=1900, high=2100),
        make=p.text(data.get("make"), "vehicle.make"),
        model=p.text(data.get("model"), "vehicle.model"),
        mileage=mileage,
    )
