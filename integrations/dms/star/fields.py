"""A STAR RepairOrder noun (as `bod.to_dict` reads it) as Pitwall's `RepairOrderRecord`.

Which paths are verified and which inferred is in ``bod.py``. Dates are ``xs:dateTime``
or ``xs:date``; one without an offset is read in the rooftop's zone [I]. The RO is closed
at its ``RepairOrderInvoiceDate`` [I: invoiced is closed]; ``JobStatusCode`` goes through
the rooftop's ``line_status_map``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsCustomer,
    DmsLine,
    DmsVehicle,
    LineStatus,
    MalformedRecord,
    RepairOrderRecord,
)


def _at(node: Any, *path: str) -> Any:
    for name in path:
        if isinstance(node, list):
            node = node[0] if node else None
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    if isinstance(node, dict):
        return node.get("#text")
    return node


def ro_number(order: dict[str, Any]) -> str | None:
    """The RO number, for quarantine hints."""
    value = _at(
        order,
        "RepairOrderHeader",
        "DocumentIdentificationGroup",
        "DocumentIdentification",
        "DocumentID",
    )
    return value if isinstance(value, str) and value else None


def _time(value: Any, field: str, zone: tzinfo) -> datetime | None:
    raw = p.text(value, field)
    if raw is None:
        return None
    if "T" in raw:
        return p.iso_time(raw, field, local=zone)
    return p.local_date(raw, field, zone)


def normalise(
    order: dict[str, Any], *, zone: tzinfo, line_status_map: Mapping[str, LineStatus]
) -> RepairOrderRecord:
    """Turn one RepairOrder noun into Pitwall's type (raises MalformedRecord)."""
    header = p.mapping(order.get("RepairOrderHeader"), "RepairOrderHeader")
    if header is None:
        raise MalformedRecord("RepairOrderHeader: missing")
    number = ro_number(order)
    if number is None:
        raise MalformedRecord("RepairOrderHeader.DocumentIdentificationGroup.DocumentID: missing")
    opened_at = _time(header.get("RepairOrderOpenedDate"), "RepairOrderOpenedDate", zone)
    if opened_at is None:
        raise MalformedRecord("RepairOrderOpenedDate: missing")
    status = p.required_text(
        _at(header, "RepairOrderStatus", "StatusCode"), "RepairOrderStatus.StatusCode"
    )
    advisor = header.get("ServiceAdvisorParty")
    advisor_name = " ".join(
        part
        for part in (
            _at(advisor, "SpecifiedPerson", "GivenName"),
            _at(advisor, "SpecifiedPerson", "FamilyName"),
        )
        if isinstance(part, str) and part
    )
    return RepairOrderRecord(
        ro_number=number,
        raw_status=status,
        opened_at=opened_at,
        promised_at=_time(
            header.get("PromisedRepairCompletionDate"), "PromisedRepairCompletionDate", zone
        ),
        closed_at=_time(header.get("RepairOrderInvoiceDate"), "RepairOrderInvoiceDate", zone),
        advisor_id=p.text(_at(advisor, "PartyID"), "ServiceAdvisorParty.PartyID"),
        advisor_name=advisor_name or None,
        customer=_customer(header.get("CustomerParty") or header.get("OwnerParty")),
        vehicle=_vehicle(header),
        lines=tuple(
            _job(job, f"Job[{i}]", line_status_map)
            for i, job in enumerate(p.sequence(order.get("Job"), "Job"))
        ),
    )


def _customer(party: Any) -> DmsCustomer | None:
    if not isinstance(party, dict):
        return None
    party_id = p.text(_at(party, "PartyID"), "CustomerParty.PartyID")
    if party_id is None:
        return None
    found = party.get("SpecifiedPerson")
    person: dict[str, Any] = found if isinstance(found, dict) else {}
    phones = []
    for i, item in enumerate(p.sequence(person.get("TelephoneCommunication"), "phones")):
        phone = p.phone(
            _at(item, "CompleteNumber"),
            _at(item, "UseCode"),
            f"CustomerParty.TelephoneCommunication[{i}].CompleteNumber",
        )
        if phone is not None:
            phones.append(phone)
    uris = p.sequence(person.get("URICommunication"), "CustomerParty.URICommunication")
    return DmsCustomer(
        external_id=party_id,
        first_name=p.text(person.get("GivenName"), "CustomerParty.GivenName"),
        last_name=p.text(person.get("FamilyName"), "CustomerParty.FamilyName"),
        phones=tuple(phones),
        email=p.text(_at(uris, "URIID"), "CustomerParty.URICommunication.URIID"),
    )


def _vehicle(header: dict[str, Any]) -> DmsVehicle | None:
    vehicle = header.get("RepairOrderVehicleLineItem")
    vehicle = vehicle.get("Vehicle") if isinstance(vehicle, dict) else None
    if not isinstance(vehicle, dict):
        return None
    measure = header.get("InDistanceMeasure")
    unit = measure.get("@unitCode", "mile") if isinstance(measure, dict) else "mile"
    miles = p.integer(_at(header, "InDistanceMeasure"), "InDistanceMeasure")
    if miles is not None and str(unit).lower() in ("km", "kilometer", "kilometre"):
        miles = round(miles / 1.609344)
    return DmsVehicle(
        vin=p.vin(vehicle.get("VehicleID")),
        year=p.integer(vehicle.get("ModelYear"), "Vehicle.ModelYear", low=1900, high=2100),
        make=p.text(vehicle.get("MakeString"), "Vehicle.MakeString"),
        model=p.text(vehicle.get("Model"), "Vehicle.Model"),
        mileage=miles,
    )


def _job(job: Any, where: str, line_status_map: Mapping[str, LineStatus]) -> DmsLine:
    data = p.mapping(job, where) or {}
    amount = _at(data, "Price", "ChargeAmount")
    return DmsLine(
        line_code=p.text(data.get("JobNumberString"), f"{where}.JobNumberString")
        or p.required_text(data.get("LineNumber"), f"{where}.LineNumber"),
        op_code=p.required_text(data.get("OperationID"), f"{where}.OperationID"),
        description=p.text(data.get("OperationName"), f"{where}.OperationName") or "",
        amount_cents=0 if amount in (None, "") else p.cents(amount, f"{where}.Price.ChargeAmount"),
        status=p.line_status(data.get("JobStatusCode"), line_status_map, f"{where}.JobStatusCode"),
    )
