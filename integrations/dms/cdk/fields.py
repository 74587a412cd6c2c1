"""A Fortellis Service Repair Order v1 record as Pitwall's `RepairOrderRecord`.

Field names are those of the public client C1 (``rrandall91/fortellis-api-nodejs-client``
``src/apis/cdkdrivegetrepairorder/v1.ts``, interface ``RepairOrderResponse``) [V]:
``roNumber``, ``statusCode``, ``openDate`` / ``openTime``, ``promisedDate`` /
``promisedTime``, ``closedDate``, ``voidedDate``, ``serviceAdvisor`` (a number),
``mileage``, ``customer {customerId, name1, name2, phoneNumbers [{number, extension,
description}], emailAddresses [{address, desc}]}``, ``vehicle {vin, year, make,
makeDesc, model, modelDesc}``, ``operations [{line {lineCode, statusCode, statusDesc,
serviceRequest, laborOperations [{opCode, opCodeDesc, sale}]}}]``.

Not published [U], so read tolerantly: the date and time formats (see
`parsing.local_date_time`), what ``statusCode`` values mean (the rooftop's status
map decides), what a line's ``statusCode`` means for approval (the rooftop's
``line_status_map``; unmapped reads as approved), and whether ``name1`` is
"LAST, FIRST" (split on the comma when there is one). The record carries no
modification time, so ``updated_at`` is None and the adapter's watermark moves the
cursor instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsCustomer,
    DmsLine,
    DmsVehicle,
    LineStatus,
    MalformedRecord,
    RawRecord,
    RepairOrderRecord,
)


def raw(item: Any) -> RawRecord:
    """One element of a result's ``data`` as a raw record (anything but an object is kept
    as it came, to be quarantined)."""
    if not isinstance(item, dict):
        return RawRecord(payload={"unexpected": item})
    hint = item.get("roNumber")
    return RawRecord(payload=item, ro_number=str(hint) if hint is not None else None)


def normalise(
    data: dict[str, Any], *, zone: tzinfo, line_status_map: Mapping[str, LineStatus]
) -> RepairOrderRecord:
    """Turn one Fortellis repair order into Pitwall's type (raises MalformedRecord)."""
    opened_at = p.local_date_time(data.get("openDate"), data.get("openTime"), "openDate", zone)
    if opened_at is None:
        opened_at = p.local_date(data.get("openDate"), "openDate", zone)
    if opened_at is None:
        raise MalformedRecord("openDate: missing")
    lines: list[DmsLine] = []
    for i, operation in enumerate(p.sequence(data.get("operations"), "operations")):
        lines.extend(_lines(operation, f"operations[{i}]", line_status_map))
    closed_at = p.local_date(data.get("closedDate"), "closedDate", zone) or p.local_date(
        data.get("voidedDate"), "voidedDate", zone
    )
    return RepairOrderRecord(
        ro_number=p.required_text(data.get("roNumber"), "roNumber"),
        raw_status=p.required_text(data.get("statusCode"), "statusCode"),
        opened_at=opened_at,
        promised_at=p.local_date_time(
            data.get("promisedDate"), data.get("promisedTime"), "promisedDate/promisedTime", zone
        ),
        closed_at=closed_at,
        advisor_id=p.text(data.get("serviceAdvisor"), "serviceAdvisor"),
        customer=_customer(p.mapping(data.get("customer"), "customer")),
        vehicle=_vehicle(p.mapping(data.get("vehicle"), "vehicle"), data.get("mileage")),
        lines=tuple(lines),
    )


def _lines(operation: Any, where: str, line_status_map: Mapping[str, LineStatus]) -> list[DmsLine]:
    line = p.mapping((p.mapping(operation, where) or {}).get("line"), f"{where}.line") or {}
    code = p.required_text(line.get("lineCode"), f"{where}.line.lineCode")
    status = p.line_status(line.get("statusCode"), line_status_map, f"{where}.line.statusCode")
    labor = p.sequence(line.get("laborOperations"), f"{where}.line.laborOperations")
    # The technician's finding: `cause`, else the `storyText` write-up [V C1 field names;
    # that they hold the technician's words is I]. It belongs to the line, so every op has it.
    note = p.text(line.get("cause"), f"{where}.line.cause") or p.text(
        line.get("storyText"), f"{where}.line.storyText"
    )
    result = []
    # One DmsLine per labor operation: declined-work recovery matches on op code.
    for n, item in enumerate(labor):
        op_where = f"{where}.line.laborOperations[{n}]"
        op = p.mapping(item, op_where) or {}
        sale = op.get("sale")
        result.append(
            DmsLine(
                line_code=code if n == 0 else f"{code}.{n + 1}",
                op_code=p.required_text(op.get("opCode"), f"{op_where}.opCode"),
                description=p.text(op.get("opCodeDesc"), f"{op_where}.opCodeDesc")
                or p.text(line.get("serviceRequest"), f"{where}.line.serviceRequest")
                or "",
                amount_cents=0 if sale in (None, "") else p.cents(sale, f"{op_where}.sale"),
                status=status,
                note=note,
            )
        )
    return result


def _customer(data: dict[str, Any] | None) -> DmsCustomer | None:
    if data is None:
        return None
    name = p.text(data.get("name1"), "customer.name1") or ""
    if "," in name:
        last, _, first = (part.strip() for part in name.partition(","))
    else:
        first, _, last = name.rpartition(" ") if " " in name else ("", "", name)
    phones = []
    for i, item in enumerate(p.sequence(data.get("phoneNumbers"), "customer.phoneNumbers")):
        entry = p.mapping(item, f"customer.phoneNumbers[{i}]") or {}
        phone = p.phone(
            entry.get("number"), entry.get("description"), f"customer.phoneNumbers[{i}].number"
        )
        if phone is not None:
            phones.append(phone)
    emails = p.sequence(data.get("emailAddresses"), "customer.emailAddresses")
    email = None
    if emails:
        first_email = p.mapping(emails[0], "customer.emailAddresses[0]") or {}
        email = p.text(first_email.get("address"), "customer.emailAddresses[0].address")
    return DmsCustomer(
        external_id=p.required_text(data.get("customerId"), "customer.customerId"),
        first_name=first or None,
        last_name=last or None,
        phones=tuple(phones),
        email=email,
    )


def _vehicle(data: dict[str, Any] | None, mileage: Any) -> DmsVehicle | None:
    if data is None:
        return None
    return DmsVehicle(
        vin=p.vin(data.get("vin")),
        year=p.integer(data.get("year"), "vehicle.year", low=1900, high=2100),
        make=p.text(data.get("makeDesc"), "vehicle.makeDesc")
        or p.text(data.get("make"), "vehicle.make"),
        model=p.text(data.get("modelDesc"), "vehicle.modelDesc")
        or p.text(data.get("model"), "vehicle.model"),
        mileage=p.integer(mileage, "mileage"),
    )
