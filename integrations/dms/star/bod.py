"""STAR ShowRepairOrder BOD documents: reading them (and, for fakes and tests, writing them).

What is verified [V]: the noun is RepairOrder and Get is answered by Show
(ShowRepairOrder), with the RO's status at
``RepairOrder/RepairOrderHeader/RepairOrderStatus/StatusCode`` (R1, Salesforce's
Automotive Cloud repair-order BOD guide); the header carries ``RepairOrderOpenedDate``,
``RepairOrderCompletedDate``, ``RepairOrderInvoiceDate``, ``PromisedRepairCompletionDate``,
``InDistanceMeasure``, ``ServiceAdvisorParty``, ``RepairOrderVehicleLineItem`` (R2, the
STAR 5.3.4 schema's ``RepairOrderHeaderType``); a job carries ``JobStatusCode`` and
``LineNumber`` (STAR 5.11.4 ``JobType``), and the older job element ``JobNumberString``,
``OperationID`` and ``OperationName``.

What is inferred from STAR 5's naming rules and not checked against a full sample [I]:
the BOD wrapper (``ShowRepairOrder/ApplicationArea`` + ``ShowRepairOrderDataArea/Show`` +
``RepairOrder*``), the RO number at ``DocumentIdentificationGroup/DocumentIdentification/
DocumentID``, the customer as the header's ``CustomerParty`` or ``OwnerParty`` (``PartyID``,
``SpecifiedPerson/GivenName``, ``FamilyName``, ``TelephoneCommunication/CompleteNumber`` +
``UseCode``, ``URICommunication/URIID``), the vehicle's ``VehicleID`` (VIN), ``ModelYear``,
``MakeString``, ``Model``, the advisor's ``PartyID`` and name, and a job's amount in
``Price/ChargeAmount``. Elements are matched by local name, so any namespace prefix or
release reads the same.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from integrations.dms.dealertrack.soap import local, parse_xml

STAR_NS = "http://www.starstandard.org/STAR/5"
REPEATED = {"Job", "TelephoneCommunication", "URICommunication", "RepairOrder"}


def to_dict(element: Element) -> dict[str, Any]:
    """An element as nested dicts of local names; repeated elements as lists; attributes
    under ``@name``; an element's own text under ``#text`` when it also has attributes."""
    node: dict[str, Any] = {f"@{local(k)}": v for k, v in element.attrib.items()}
    for child in element:
        name = local(child.tag)
        value: Any
        if len(child) or child.attrib:
            value = to_dict(child)
            if not len(child) and (child.text or "").strip():
                value["#text"] = (child.text or "").strip()
        else:
            value = (child.text or "").strip()
        if name in REPEATED:
            node.setdefault(name, []).append(value)
        else:
            node[name] = value
    return node


def repair_orders(document: bytes) -> list[dict[str, Any]]:
    """Every RepairOrder noun of a ShowRepairOrder document, as dicts (raises on bad XML)."""
    root = parse_xml(document)
    if local(root.tag) != "ShowRepairOrder":
        raise ValueError(f"not a ShowRepairOrder document (root element {local(root.tag)})")
    return [to_dict(e) for e in root.iter() if local(e.tag) == "RepairOrder"]


def _xml(name: str, value: Any) -> str:
    if isinstance(value, list):
        return "".join(_xml(name, item) for item in value)
    if isinstance(value, dict):
        attrs = "".join(
            f' {k[1:]}="{escape(str(v))}"' for k, v in value.items() if k.startswith("@")
        )
        inner = escape(str(value.get("#text", "")))
        inner += "".join(_xml(k, v) for k, v in value.items() if k[0] not in "@#")
        return f"<{name}{attrs}>{inner}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def show_repair_order(orders: list[dict[str, Any]], *, bod_id: str, created: str) -> bytes:
    """A ShowRepairOrder document holding ``orders`` (dicts as `to_dict` reads them)."""
    body = "".join(_xml("RepairOrder", order) for order in orders)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><ShowRepairOrder xmlns="{STAR_NS}" '
        'releaseID="5.3.4"><ApplicationArea><Sender><CreatorNameCode>DMS</CreatorNameCode>'
        "<SenderNameCode>DMS</SenderNameCode></Sender>"
        f"<CreationDateTime>{escape(created)}</CreationDateTime><BODID>{escape(bod_id)}</BODID>"
        "<Destination><DestinationNameCode>PW</DestinationNameCode></Destination>"
        "</ApplicationArea><ShowRepairOrderDataArea><Show/>"
        f"{body}</ShowRepairOrderDataArea></ShowRepairOrder>"
    ).encode()
