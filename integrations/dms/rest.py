"""Pitwall's own REST bridge (``kind = "rest"``), the contract in DESIGN.md.

``GET {base_url}/repair-orders?updated_since=<ISO 8601 UTC>&cursor=<opaque>``
with a Bearer token, paged until ``next_cursor`` is null. The same record shape
is what the simulator produces, so :func:`normalise_bridge_record` is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import httpx

from integrations.dms import parsing as p
from integrations.dms.base import (
    LINE_STATUSES,
    DmsCustomer,
    DmsError,
    DmsLine,
    DmsPage,
    DmsVehicle,
    MalformedRecord,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)
from integrations.dms.http import DEFAULT_TIMEOUT, RetryPolicy, VendorHttp


def normalise_bridge_record(payload: dict[str, Any]) -> RepairOrderRecord:
    """Turn one bridge-contract ``repair_orders[]`` item into a RepairOrderRecord."""
    ro_number = p.required_text(payload.get("ro_number"), "ro_number")
    opened_at = p.iso_time(payload.get("opened_at"), "opened_at")
    if opened_at is None:
        raise MalformedRecord("opened_at: missing")
    advisor = p.mapping(payload.get("advisor"), "advisor") or {}
    return RepairOrderRecord(
        ro_number=ro_number,
        raw_status=p.required_text(payload.get("status"), "status"),
        opened_at=opened_at,
        updated_at=p.iso_time(payload.get("updated_at"), "updated_at"),
        promised_at=p.iso_time(payload.get("promised_at"), "promised_at"),
        closed_at=p.iso_time(payload.get("closed_at"), "closed_at"),
        advisor_id=p.text(advisor.get("id"), "advisor.id"),
        advisor_name=p.text(advisor.get("name"), "advisor.name"),
        customer=_customer(p.mapping(payload.get("customer"), "customer")),
        vehicle=_vehicle(p.mapping(payload.get("vehicle"), "vehicle")),
        lines=tuple(
            _line(item, i) for i, item in enumerate(p.sequence(payload.get("lines"), "lines"))
        ),
    )


def _customer(data: dict[str, Any] | None) -> DmsCustomer | None:
    if data is None:
        return None
    phones = []
    for i, item in enumerate(p.sequence(data.get("phones"), "customer.phones")):
        where, number_f = _phone_fields(i)
        entry = p.mapping(item, where) or {}
        phone = p.phone(entry.get("number"), entry.get("kind"), number_f)
        if phone is not None:
            phones.append(phone)
    return DmsCustomer(
        external_id=p.required_text(data.get("id"), "customer.id"),
        first_name=p.text(data.get("first_name"), "customer.first_name"),
        last_name=p.text(data.get("last_name"), "customer.last_name"),
        phones=tuple(phones),
        email=p.text(data.get("email"), "customer.email"),
        language=p.language(data.get("language")),
        sms_consent=p.consent(data.get("sms_consent"), "customer.sms_consent"),
        marketing_consent=p.consent(data.get("marketing_consent"), "customer.marketing_consent"),
    )


@lru_cache(maxsize=64)
def _phone_fields(index: int) -> tuple[str, str]:
    return f"customer.phones[{index}]", f"customer.phones[{index}].number"


def _vehicle(data: dict[str, Any] | None) -> DmsVehicle | None:
    if data is None:
        return None
    return DmsVehicle(
        vin=p.vin(data.get("vin")),
        year=p.integer(data.get("year"), "vehicle.year", low=1900, high=2100),
        make=p.text(data.get("make"), "vehicle.make"),
        model=p.text(data.get("model"), "vehicle.model"),
        mileage=p.integer(data.get("mileage"), "vehicle.mileage"),
    )


def _line(item: Any, index: int) -> DmsLine:
    where, status_f, line_f, op_code_f, description_f, amount_f, note_f = _line_fields(index)
    data = p.mapping(item, where) or {}
    status = p.required_text(data.get("status"), status_f).lower()
    if status not in LINE_STATUSES:
        raise MalformedRecord(f"{status_f}: unknown line status {status!r}")
    return DmsLine(
        line_code=p.text(data.get("line"), line_f) or str(index + 1),
        op_code=p.required_text(data.get("op_code"), op_code_f),
        description=p.text(data.get("description"), description_f) or "",
        amount_cents=p.cents(data.get("amount"), amount_f),
        status=status,  # checked against LINE_STATUSES above
        note=p.text(data.get("note"), note_f),  # optional: bridges written before it omit it
    )


@lru_cache(maxsize=256)
def _line_fields(index: int) -> tuple[str, ...]:
    """The field names a line's errors are reported under, made once per index."""
    where = f"lines[{index}]"
    return (
        where,
        *(
            f"{where}.{name}"
            for name in ("status", "line", "op_code", "description", "amount", "note")
        ),
    )


class RestBridgeAdapter:
    """Reads the Pitwall REST bridge of one rooftop."""

    kind = "rest"
    snapshot = False

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        rooftop_slug: str,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.http = VendorHttp(
            kind=self.kind,
            rooftop_slug=rooftop_slug,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def _get_page(self, params: dict[str, str]) -> dict[str, Any]:
        response = self.http.request(
            "GET", f"{self.base_url}/repair-orders", params=params, headers=self._headers
        )
        try:
            body = response.json()
        except ValueError as exc:
            raise self.http.error(DmsError, "repair-orders answered with invalid JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("repair_orders"), list):
            raise self.http.error(DmsError, "repair-orders answer has no 'repair_orders' list")
        return body

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """Yield one page per bridge response, following ``next_cursor``."""
        params: dict[str, str] = {}
        if since is not None:
            params["updated_since"] = p.utc_z(since)
        while True:
            body = self._get_page(params)
            yield DmsPage(records=[_raw(item) for item in body["repair_orders"]])
            cursor = body.get("next_cursor")
            if not cursor:
                return
            params["cursor"] = str(cursor)

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Normalise one bridge record (raises MalformedRecord)."""
        return normalise_bridge_record(record.payload)

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """``GET /repair-orders/{ro}`` when the bridge offers it; None on 404/405.

        The contract does not require a single-RO route, and the bridge is not a
        snapshot source, so the poller needs this only as a courtesy.
        """
        response = self.http.request(
            "GET",
            f"{self.base_url}/repair-orders/{ro_number}",
            headers=self._headers,
            allow_status=(404, 405),
        )
        if response.status_code != 200:
            return None
        body = response.json()
        return _raw(body) if isinstance(body, dict) else None

    def check(self) -> None:
        """One authenticated, cheap request (changes since now)."""
        self._get_page({"updated_since": p.utc_z(utcnow())})

    def close(self) -> None:
        """Close connections."""
        self.http.close()


def _raw(item: Any) -> RawRecord:
    if not isinstance(item, dict):
        return RawRecord(payload={"unexpected": item}, ro_number=None)
    hint = item.get("ro_number")
    return RawRecord(payload=item, ro_number=str(hint) if hint is not None else None)
