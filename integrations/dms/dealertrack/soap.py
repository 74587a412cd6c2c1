"""OpenTrack's SOAP envelopes, in and out, and its faults.

Sources (facts/dms.md §2): D2, the service's own operation pages
(``ot.dms.dealertrack.com/ServiceAPI.asmx?op=OpenRepairOrderLookup``,
``?op=GetClosedRepairOrderDetails``) [V]: SOAP 1.1, ``text/xml; charset=utf-8``,
``SOAPAction: "opentrack.dealertrack.com/<Op>"``, request namespace
``opentrack.dealertrack.com``, a ``Dealer`` (``dealer`` for the closed operations) block
of ``CompanyNumber``, ``EnterpriseCode``, ``ServerName``; the open lookup answers
``soap:Body/OpenRepairOrderLookupResult`` (namespace
``opentrack.dealertrack.com/transitional``) ``/Result*``, the closed one
``GetClosedRepairOrderDetailsResponse/GetClosedRepairOrderDetailsResult/{ClosedRepairOrder,
Errors/Error{Code,Message}}``. D1 (``tmonck/OpenTrack.NET``@1f1280c) [V]: the
``wsse:Security`` header (OASIS WSS 1.0) with ``UsernameToken`` / ``Password
Type=...#PasswordText`` and a ``wsu:Timestamp``; times sent as ``yyyy-MM-ddTHH:mm:ssZ``;
empty lookup parameters left out; error 311 = the dealer has not granted this vendor
access.

Answers are parsed with defusedxml and DTDs refused outright: a DMS answer never
needs one, and entity expansion (billion laughs, XXE) is an attack.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET

NS = "opentrack.dealertrack.com"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordText"
)
NO_ACCESS_CODE = "311"
# Detail rows and closed-RO sub-lists: repeated elements kept as lists, not flattened.
LISTS = {
    "Details",
    "LaborDetails",
    "Parts",
    "Comments",
    "Errors",
    "ClosedRepairOrders",
    "LineItems",
}


def soap_action(operation: str) -> str:
    """The SOAPAction header value, quotes included, as the service pages show it."""
    return f'"{NS}/{operation}"'


def wire_time(moment: datetime) -> str:
    """A time as OpenTrack.NET sends it: UTC, ``yyyy-MM-ddTHH:mm:ssZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(
    operation: str,
    *,
    dealer_tag: str,
    dealer: Mapping[str, str],
    parms_tag: str,
    parms: Mapping[str, str | None],
    username: str,
    password: str,
    now: datetime,
    extra_xml: str = "",
) -> bytes:
    """A request envelope with its WS-Security header; empty parameters are left out.

    ``extra_xml`` is appended inside the parameters block, already rendered (the
    ``LineItems`` of an update).
    """
    created = wire_time(now)
    expires = wire_time(now + timedelta(minutes=5))
    dealer_xml = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in dealer.items())
    parms_xml = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in parms.items() if v) + extra_xml
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:xsi="{XSI_NS}">'
        "<soap:Header>"
        f'<wsse:Security soap:mustUnderstand="1" xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}">'
        f'<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>{created}</wsu:Created>'
        f"<wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>"
        f"<wsse:UsernameToken><wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_TEXT}">{escape(password)}</wsse:Password>'
        "</wsse:UsernameToken></wsse:Security></soap:Header>"
        f'<soap:Body><{operation} xmlns="{NS}">'
        f"<{dealer_tag}>{dealer_xml}</{dealer_tag}>"
        f"<{parms_tag}>{parms_xml}</{parms_tag}>"
        f"</{operation}></soap:Body></soap:Envelope>"
    ).encode()


def parse_xml(text: str | bytes) -> Element:
    """Parse untrusted XML with DTDs, entities and external references all refused."""
    return SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def find(root: Element, name: str) -> Element | None:
    """The first element named ``name`` (any namespace) at or under ``root``."""
    for element in root.iter():
        if local(element.tag) == name:
            return element
    return None


def text_of(root: Element, name: str) -> str:
    """The trimmed text of the first ``name`` element, "" when absent or empty."""
    element = find(root, name)  # an Element with no children is falsy: test for None
    return "" if element is None else (element.text or "").strip()


def flatten(element: Element, prefix: str = "") -> dict[str, Any]:
    """An element as a flat JSON-able dict of text values.

    A container is flattened into its parent with the names joined, so the nested
    ``Customer/Address1`` of the operation page and the flat ``CustomerAddress1`` of the
    OpenTrack.NET sample read the same; ``Details`` and the closed RO's sub-lists are
    lists of such dicts.
    """
    record: dict[str, Any] = {}
    for child in element:
        name = local(child.tag)
        if name in LISTS and (len(child) or name == "Details"):
            record[prefix + name] = [flatten(item) for item in child]
        elif len(child):
            inner = flatten(child, prefix + name)
            if len({local(c.tag) for c in child}) < len(child):  # repeated rows: a list
                record[prefix + name] = [flatten(item) for item in child]
            else:
                record.update(inner)
        else:
            record[prefix + name] = (child.text or "").strip()
    return record


ROW_NAMES = {
    "Details": "OpenRepairOrderDetail",
    "LaborDetails": "Labor",
    "Parts": "Part",
    "Comments": "Comment",
    "Errors": "Error",
    "ClosedRepairOrders": "ClosedRepairOrder",
}
CLOSED_ROW_NAMES = {**ROW_NAMES, "Details": "ClosedRepairOrderDetail"}


def render(name: str, value: Any, rows: Mapping[str, str] = ROW_NAMES) -> str:
    """The inverse of `flatten` (for the fake): a dict as elements, a list as its rows."""
    if isinstance(value, list):
        row = rows.get(name, name)
        inner = "".join(render(row, item, rows) for item in value)
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, dict):
        return f"<{name}>" + "".join(render(k, v, rows) for k, v in value.items()) + f"</{name}>"
    if value is None or value == "":
        return f"<{name} />"
    return f"<{name}>{escape(str(value))}</{name}>"


def update_line_items(items: list[tuple[str, str, str, str]]) -> str:
    """``LineItems`` of ``UpdateRepairOrderLines``: (op code, line number, status, amount).

    WSDL of D1 (branch deleteServiceLine@917d01f, ``ServiceAPI.wsdl``) [V]: each
    ``LineItem`` is an ``UpdateLineItem`` whose sequence is LaborOpCode, ServiceLineNumber
    (int), TransCode, LineStatus, LinePaymentMethod, LaborHours (nillable), ActualRetailAmount
    (decimal, required), ServiceType, EstimatePrice (nillable), ...; elements with
    minOccurs 1 are sent (nil where allowed), optional ones left out. What the service does
    with ActualRetailAmount is [U]: the line's amount as the customer was shown it is sent.
    """
    rows = "".join(
        "<LineItem>"
        f"<LaborOpCode>{escape(op_code)}</LaborOpCode>"
        f"<ServiceLineNumber>{escape(number)}</ServiceLineNumber>"
        f"<LineStatus>{escape(status)}</LineStatus>"
        '<LaborHours xsi:nil="true" />'
        f"<ActualRetailAmount>{escape(amount)}</ActualRetailAmount>"
        '<EstimatePrice xsi:nil="true" />'
        "</LineItem>"
        for op_code, number, status, amount in items
    )
    return f"<LineItems>{rows}</LineItems>"
