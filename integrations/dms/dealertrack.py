"""Dealertrack OpenTrack, SOAP/XML (``kind = "dealertrack"``): a snapshot source.

``OpenRepairOrderLookup`` has no "updated since", so every poll reads the whole
open set (``snapshot = True``) and the poller diffs by content hash; an RO that
vanishes is confirmed with ``fetch_one`` (the same lookup by RO number; None
means Dealertrack no longer lists it as open: closed or voided).

Wire format (as spoken by ``fakes/dealertrack_fake.py``): POST a SOAP 1.1
envelope with a WS-Security UsernameToken and ``<Dealer><DealerId>``; the answer
holds ``RepairOrders/RepairOrder`` elements with ``RONumber``, ``ROStatus``
(numeric code, kept as text), ``OpenDateTime`` / ``PromisedDateTime``
(``YYYYMMDDHHMM`` in the store's local time), ``ServiceWriterID`` /
``ServiceWriterName``, ``CustomerNumber``, ``FirstName``, ``LastName``,
``HomePhone`` / ``CellPhone`` / ``BusinessPhone``, ``Email``, ``Language``,
``VIN``, ``Year``, ``Make``, ``Model``, ``MileageIn`` and ``Details/Detail``
lines (``LineCode``, ``OpCode``, ``OpDescription``, ``LineStatus``,
``UpsellFlag``, ``NetPrice``). LineStatus: A approved, C completed, P pending
approval, D declined, O open; an upsell (``UpsellFlag=Y``) still O is
recommended work the customer did not approve, i.e. declined.

Responses are parsed with defusedxml and DTDs refused outright: a DMS answer
never needs one, and entity expansion (billion laughs, XXE) is an attack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET
import httpx
from defusedxml import DefusedXmlException

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsAuthError,
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
from integrations.dms.http import DEFAULT_TIMEOUT, RetryableResponse, RetryPolicy, VendorHttp

SOAP_ACTION = '"opentrack.dealertrack.com/OpenRepairOrderLookup"'
_STAMP = "%Y%m%d%H%M"
_LINE_CODES: dict[str, LineStatus] = {
    "A": "approved",
    "O": "approved",
    "C": "completed",
    "P": "pending",
    "D": "declined",
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(text: str | bytes) -> Element:
    """Parse untrusted XML with DTDs, entities and external references all refused."""
    return SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _find(root: Element, name: str) -> Element | None:
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def _text(root: Element, name: str) -> str:
    # An Element with no children is falsy, so test for None explicitly.
    element = _find(root, name)
    return "" if element is None else (element.text or "").strip()


def _ro_to_dict(element: Element) -> dict[str, Any]:
    """A RepairOrder element as a flat JSON-able dict, Details as a list of dicts."""
    record: dict[str, Any] = {}
    for child in element:
        name = _local(child.tag)
        if name == "Details":
            record["Details"] = [
                {_local(f.tag): (f.text or "").strip() for f in detail} for detail in child
            ]
        else:
            record[name] = (child.text or "").strip()
    return record


class DealertrackAdapter:
    """Reads one Dealertrack dealer's open repair orders."""

    kind = "dealertrack"
    snapshot = True

    def __init__(
        self,
        *,
        base_url: str,
        dealer_id: str,
        username: str,
        password: str,
        rooftop_slug: str,
        timezone: str,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url
        self.dealer_id = dealer_id
        self._username, self._password = username, password
        self.zone = ZoneInfo(timezone)
        self.clock = clock
        self.http = VendorHttp(
            kind=self.kind,
            rooftop_slug=rooftop_slug,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )

    def _envelope(self, ro_number: str | None) -> str:
        lookup = ""
        if ro_number:
            lookup = f"<ns:RepairOrderNumber>{escape(ro_number)}</ns:RepairOrderNumber>"
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:ns="opentrack.dealertrack.com" xmlns:wsse="http://docs.oasis-open.org/wss/'
            '2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
            "<soapenv:Header><wsse:Security><wsse:UsernameToken>"
            f"<wsse:Username>{escape(self._username)}</wsse:Username>"
            f"<wsse:Password>{escape(self._password)}</wsse:Password>"
            "</wsse:UsernameToken></wsse:Security></soapenv:Header>"
            "<soapenv:Body><ns:OpenRepairOrderLookup>"
            f"<ns:Dealer><ns:DealerId>{escape(self.dealer_id)}</ns:DealerId></ns:Dealer>"
            f"<ns:LookupParms>{lookup}</ns:LookupParms>"
            "</ns:OpenRepairOrderLookup></soapenv:Body></soapenv:Envelope>"
        )

    def _parse(self, response: httpx.Response) -> Element:
        try:
            return parse_xml(response.content)
        except DefusedXmlException as exc:
            raise self.http.error(
                DmsError, f"refused an XML answer containing a DTD or entities ({exc!r})"
            ) from exc
        except ParseError as exc:
            raise self.http.error(DmsError, f"answer is not well-formed XML: {exc}") from exc

    def _inspect(self, response: httpx.Response) -> None:
        """SOAP faults arrive as HTTP 500; only a Server fault is worth retrying."""
        if response.status_code < 500 or b"Fault" not in response.content:
            return
        fault = _find(self._parse(response), "Fault")
        if fault is None:
            return
        code, reason = _text(fault, "faultcode"), _text(fault, "faultstring")
        if code.endswith("Server"):
            raise RetryableResponse(response)
        if "auth" in reason.lower():
            raise self.http.error(DmsAuthError, f"authentication failed: {code} {reason}")
        raise self.http.error(DmsError, f"lookup refused: {code} {reason}")

    def _lookup(self, ro_number: str | None = None) -> list[dict[str, Any]]:
        response = self.http.request(
            "POST",
            self.url,
            content=self._envelope(ro_number).encode(),
            headers=lambda: {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION},
            inspect=self._inspect,
        )
        root = self._parse(response)
        orders = _find(root, "RepairOrders")
        if orders is None:
            raise self.http.error(DmsError, "lookup answer has no RepairOrders element")
        return [_ro_to_dict(ro) for ro in orders if _local(ro.tag) == "RepairOrder"]

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """The whole open set, always (``since`` is ignored: this is a snapshot source)."""
        records = self._lookup()
        yield DmsPage(records=[RawRecord(payload=r, ro_number=r.get("RONumber")) for r in records])

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """Look one RO up; None when Dealertrack no longer lists it as open."""
        for record in self._lookup(ro_number):
            if record.get("RONumber") == ro_number:
                return RawRecord(payload=record, ro_number=ro_number)
        return None

    def check(self) -> None:
        """One authenticated lookup of an RO number that cannot exist."""
        self._lookup("PITWALL-CHECK")

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def _stamp(self, data: dict[str, Any], field: str) -> datetime | None:
        raw = p.text(data.get(field), field)
        return None if raw is None else p.local_time(raw, _STAMP, field, self.zone)

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one RepairOrder into Pitwall's type (raises MalformedRecord).

        ``updated_at`` is None: OpenTrack has no modification time, and the
        poller diffs snapshots by content hash instead.
        """
        data = record.payload
        status = p.required_text(data.get("ROStatus"), "ROStatus")
        if not status.isdigit():
            raise MalformedRecord(f"ROStatus: expected a numeric code, got {status!r}")
        opened_at = self._stamp(data, "OpenDateTime")
        if opened_at is None:
            raise MalformedRecord("OpenDateTime: missing")
        return RepairOrderRecord(
            ro_number=p.required_text(data.get("RONumber"), "RONumber"),
            raw_status=status,
            opened_at=opened_at,
            promised_at=self._stamp(data, "PromisedDateTime"),
            advisor_id=p.text(data.get("ServiceWriterID"), "ServiceWriterID"),
            advisor_name=p.text(data.get("ServiceWriterName"), "ServiceWriterName"),
            customer=_customer(data),
            vehicle=_vehicle(data),
            lines=tuple(
                _detail(d, f"Details[{i}]")
                for i, d in enumerate(p.sequence(data.get("Details"), "Details"))
            ),
        )


def _customer(data: dict[str, Any]) -> DmsCustomer | None:
    number = p.text(data.get("CustomerNumber"), "CustomerNumber")
    if number is None:
        return None
    phones = [
        phone
        for phone in (
            p.phone(data.get("CellPhone"), "mobile", "CellPhone"),
            p.phone(data.get("HomePhone"), "home", "HomePhone"),
            p.phone(data.get("BusinessPhone"), "work", "BusinessPhone"),
        )
        if phone is not None
    ]
    return DmsCustomer(
        external_id=number,
        first_name=p.text(data.get("FirstName"), "FirstName"),
        last_name=p.text(data.get("LastName"), "LastName"),
        phones=tuple(phones),
        email=p.text(data.get("Email"), "Email"),
        language=p.language(data.get("Language")),
    )


def _vehicle(data: dict[str, Any]) -> DmsVehicle | None:
    if not any(data.get(k) for k in ("VIN", "Year", "Make", "Model")):
        return None
    return DmsVehicle(
        vin=p.vin(data.get("VIN")),
        year=p.integer(data.get("Year"), "Year", low=1900, high=2100),
        make=p.text(data.get("Make"), "Make"),
        model=p.text(data.get("Model"), "Model"),
        mileage=p.integer(data.get("MileageIn"), "MileageIn"),
    )


def _detail(item: Any, where: str) -> DmsLine:
    detail = p.mapping(item, where) or {}
    code = p.required_text(detail.get("LineStatus"), f"{where}.LineStatus").upper()
    status = _LINE_CODES.get(code)
    if status is None:
        raise MalformedRecord(f"{where}.LineStatus: unknown line status {code!r}")
    upsell = (p.text(detail.get("UpsellFlag"), f"{where}.UpsellFlag") or "N").upper() == "Y"
    if upsell and code == "O":
        status = "declined"  # recommended work left open: not approved by the customer
    return DmsLine(
        line_code=p.required_text(detail.get("LineCode"), f"{where}.LineCode"),
        op_code=p.required_text(detail.get("OpCode"), f"{where}.OpCode"),
        description=p.text(detail.get("OpDescription"), f"{where}.OpDescription") or "",
        amount_cents=p.cents(detail.get("NetPrice") or "0", f"{where}.NetPrice"),
        status=status,
    )
