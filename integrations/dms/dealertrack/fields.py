"""OpenTrack repair orders as Pitwall's `RepairOrderRecord`.

Open ROs (``OpenRepairOrderLookupResult/Result``), fields as named on the operation page
(D2) and in the OpenTrack.NET sample (D1 ``Responses/OpenRepairOrderLookupResponse.xml``)
[V]: ``RepairOrderNumber``, ``ROStatus``, ``OpenTransactionDate`` (YYYYMMDD) + ``TimeIn``
(HHMM, "639" = 06:39 [I]), ``PromisedDateTime`` (YYYYMMDDHHMM), ``ServiceWriterID``,
``CustomerKey`` / ``CustomerNumber``, ``CustomerName`` ("LAST, FIRST"),
``CustomerPhoneNumber`` (digits, "0" = none), ``CustomerEmail``, ``VIN``, ``Make``,
``Model``, ``ModelYear``, ``OdometerIn``, ``LastModified`` (ISO UTC in the 2013 sample;
its presence in today's ServiceAPI is [U]) and ``Details/OpenRepairOrderDetail`` rows
(``ServiceLineNumber``, ``LineType``, ``LaborOpCode``, ``NetPrice``, ``LineStatus``,
``Comments``). Dates are the store's wall clock, read in the rooftop's zone [I].

Lines [I]: the rows of one ``ServiceLineNumber`` make one Pitwall line; its op code is
the ``LaborOpCode`` of its first ``LineType`` A row (labor operation, per the
AddRepairOrder docs in D1), else its first ``LaborOpCode``; its amount is the sum of the
rows' ``NetPrice`` (dollars, as the sample's 10 h x 75 = 750 shows); a service line with
no op code at all (header ``E`` rows, comments) is not a line. ``LineStatus`` is often
empty, and an empty ``LineStatus`` or ``UpsellFlag`` is data, not an error: codes go
through the rooftop's ``line_status_map`` (default: C = completed [V: "C = complete"];
anything else approved). What marks a declined line in OpenTrack is not in any public
source [U]: a dealer who knows their code maps it to ``declined``.

Closed ROs (``GetClosedRepairOrderDetailsResult/ClosedRepairOrder``) [V D2, D1 WSDL]:
``RepairOrderNumber``, ``OpenDate``, ``CloseDate``, ``FinalCloseDate``, the customer
fields, ``VIN``, ``OdometerIn``, ``Details/ClosedRepairOrderDetail {LineNumber,
LaborDetails/Labor {LaborOpCode, LaborAmount}, Parts/Part {NetPrice}}``. A closed RO has
no status field, so its raw status is ``CLOSED`` (map it to ``closed``); its lines are
the billed ones (amount above zero) and read as completed [I]: a line left off keeps
what Pitwall knew of it (a declined line stays declined).
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

CLOSED_STATUS = "CLOSED"
DEFAULT_LINE_STATUSES: dict[str, LineStatus] = {"C": "completed"}


def normalise(
    data: dict[str, Any], *, zone: tzinfo, line_status_map: Mapping[str, LineStatus]
) -> RepairOrderRecord:
    """An open RO (flat Result dict) or a closed one (``{"ClosedRepairOrder": {...}}``)."""
    closed = data.get("ClosedRepairOrder")
    if isinstance(closed, dict):
        return _closed(closed, zone)
    status = p.required_text(data.get("ROStatus"), "ROStatus")
    day = p.text(data.get("OpenTransactionDate"), "OpenTransactionDate")
    if day is None:
        raise MalformedRecord("OpenTransactionDate: missing")
    opened_at = p.local_date_time(day, data.get("TimeIn") or "0000", "OpenTransactionDate", zone)
    assert opened_at is not None  # both parts present
    mapping = {**DEFAULT_LINE_STATUSES, **line_status_map}
    return RepairOrderRecord(
        ro_number=p.required_text(data.get("RepairOrderNumber"), "RepairOrderNumber"),
        raw_status=status,
        opened_at=opened_at,
        updated_at=p.iso_time(data.get("LastModified"), "LastModified", local=zone),
        promised_at=_stamp(data.get("PromisedDateTime"), "PromisedDateTime", zone),
        advisor_id=p.text(data.get("ServiceWriterID"), "ServiceWriterID"),
        customer=_customer(data),
        vehicle=_vehicle(data, "ModelYear"),
        lines=_open_lines(p.sequence(data.get("Details"), "Details"), mapping),
    )


def _stamp(value: Any, field: str, zone: tzinfo) -> datetime | None:
    """YYYYMMDDHHMM local; "0", blank or a bare midnight (a date with no time) is None."""
    raw = p.text(value, field)
    if raw is None or raw == "0":
        return None
    if len(raw) != 12 or not raw.isdigit():
        raise MalformedRecord(f"{field}: not a YYYYMMDDHHMM time: {raw!r}")
    if raw.endswith("0000"):
        return None
    return p.local_date_time(raw[:8], raw[8:], field, zone)


def _customer(data: dict[str, Any]) -> DmsCustomer | None:
    key = p.text(data.get("CustomerKey"), "CustomerKey")
    key = key or p.text(data.get("CustomerNumber"), "CustomerNumber")
    if key is None or key == "0":
        return None
    name = p.text(data.get("CustomerName"), "CustomerName") or ""
    last, _, first = (part.strip() for part in name.partition(","))
    number = p.text(data.get("CustomerPhoneNumber"), "CustomerPhoneNumber")
    phone = None
    if number is not None and number.strip("0"):  # "0" is OpenTrack's "no phone"
        phone = p.phone(number, None, "CustomerPhoneNumber")
    return DmsCustomer(
        external_id=key,
        first_name=first or None,
        last_name=last or None,
        phones=() if phone is None else (phone,),
        email=p.text(data.get("CustomerEmail"), "CustomerEmail"),
    )


def _vehicle(data: dict[str, Any], year_field: str) -> DmsVehicle | None:
    if not any(data.get(k) for k in ("VIN", year_field, "Make", "Model")):
        return None
    odometer = p.text(data.get("OdometerIn"), "OdometerIn")
    return DmsVehicle(
        vin=p.vin(data.get("VIN")),
        year=p.integer(data.get(year_field), year_field, low=1900, high=2100),
        make=p.text(data.get("Make"), "Make"),
        model=p.text(data.get("Model"), "Model"),
        mileage=None if odometer in (None, "0") else p.integer(odometer, "OdometerIn"),
    )


def _open_lines(details: list[Any], mapping: Mapping[str, LineStatus]) -> tuple[DmsLine, ...]:
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, item in enumerate(details):
        row = p.mapping(item, f"Details[{i}]") or {}
        number = p.required_text(row.get("ServiceLineNumber"), f"Details[{i}].ServiceLineNumber")
        groups.setdefault(number, []).append((i, row))
    lines = []
    for number, rows in groups.items():
        labor = [(i, r) for i, r in rows if (r.get("LineType") or "").upper() == "A"]
        coded = [(i, r) for i, r in labor + rows if p.text(r.get("LaborOpCode"), "LaborOpCode")]
        if not coded:
            continue  # a header or comment-only service line: nothing to approve or decline
        first_i, first = coded[0]
        op_code = p.required_text(first.get("LaborOpCode"), f"Details[{first_i}].LaborOpCode")
        status_rows = [
            (i, r)
            for i, r in labor + rows
            if p.text(r.get("LineStatus"), f"Details[{i}].LineStatus")
        ]
        code = status_rows[0][1].get("LineStatus") if status_rows else ""
        comments = [p.text(r.get("Comments"), f"Details[{i}].Comments") for i, r in labor]
        written = [c for c in comments if c]
        amount = sum(p.cents(r.get("NetPrice") or "0", f"Details[{i}].NetPrice") for i, r in rows)
        lines.append(
            DmsLine(
                line_code=number,
                op_code=op_code,
                description=written[0] if written else "",
                amount_cents=amount,
                status=p.line_status(code, mapping, f"Details[{first_i}].LineStatus"),
                # LineType A is "labor-op/comment" [V D1]: the first comment names the line,
                # the ones after it are the technician's words about it [I].
                note=" ".join(written[1:]) or None,
            )
        )
    return tuple(lines)


def _closed(data: dict[str, Any], zone: tzinfo) -> RepairOrderRecord:
    opened_at = p.local_date(data.get("OpenDate"), "OpenDate", zone)
    if opened_at is None:
        raise MalformedRecord("OpenDate: missing")
    closed_at = p.local_date(data.get("FinalCloseDate"), "FinalCloseDate", zone) or p.local_date(
        data.get("CloseDate"), "CloseDate", zone
    )
    lines = []
    for i, item in enumerate(p.sequence(data.get("Details"), "Details")):
        where = f"Details[{i}]"
        detail = p.mapping(item, where) or {}
        labor = [p.mapping(x, f"{where}.Labor") or {} for x in detail.get("LaborDetails") or []]
        parts = [p.mapping(x, f"{where}.Part") or {} for x in detail.get("Parts") or []]
        op_code = next((p.text(x.get("LaborOpCode"), "LaborOpCode") for x in labor), None)
        amount = sum(p.cents(x.get("LaborAmount") or "0", f"{where}.LaborAmount") for x in labor)
        amount += sum(p.cents(x.get("NetPrice") or "0", f"{where}.Part.NetPrice") for x in parts)
        if not op_code or amount <= 0:
            continue  # not billed: what Pitwall knew of the line stands
        lines.append(
            DmsLine(
                line_code=p.required_text(detail.get("LineNumber"), f"{where}.LineNumber"),
                op_code=op_code,
                description="",
                amount_cents=amount,
                status="completed",
            )
        )
    return RepairOrderRecord(
        ro_number=p.required_text(data.get("RepairOrderNumber"), "RepairOrderNumber"),
        raw_status=CLOSED_STATUS,
        opened_at=opened_at,
        closed_at=closed_at,
        advisor_id=p.text(data.get("ServiceWriterID"), "ServiceWriterID"),
        customer=_customer(data),
        vehicle=_vehicle(data, "ModelYear"),
        lines=tuple(lines),
    )
