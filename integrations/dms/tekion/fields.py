"""A Tekion repair order (search result plus its jobs and customer) as Pitwall's type.

Everything here is second-hand [S] or inferred [I]: Tekion's APC documentation is
behind partner approval (T3). Search results, as developers who called the API live
report (T4) [S]: ``documentId``, ``documentNumber`` (the RO number), ``status``
(CLOSED, INVOICED seen; mocks also OPEN, READY_FOR_INVOICE), ``vin``, ``creationTime``,
``modifiedTime`` (epoch ms), ``primaryCustomer.id``, ``assignee.advisor.id``; money in
integer cents. Jobs (``GET /repair-orders/{id}/jobs``) and the RO customer
(``/ro-customers/{id}``) as the T2 client's (mocked) tests show them [S]: a job's
``id`` / ``jobNumber``, ``status``, ``description`` / ``concern.text``,
``operations [{opcode, opcodeDescription, labor {saleAmount}}]`` (or ``opcode`` /
``taskCode`` on the job); a customer's ``firstName``, ``lastName``, ``phone`` (or
``phoneCommunications [{phoneType, phone {completeNumber}}]`` as in T2's customer
search), ``email``. ``promisedTime``, ``closedTime`` / ``invoicedTime`` and
``assignee.advisor.name`` are read when present [U]. A job's ``status`` goes through
the rooftop's ``line_status_map`` (nothing published says which status is declined).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    """One search result as a raw record (a non-object is kept as it came, to quarantine)."""
    if not isinstance(item, dict):
        return RawRecord(payload={"unexpected": item})
    hint = item.get("documentNumber")
    return RawRecord(payload=item, ro_number=str(hint) if hint is not None else None)


def normalise(
    data: dict[str, Any], *, line_status_map: Mapping[str, LineStatus]
) -> RepairOrderRecord:
    """Turn one enriched Tekion RO into Pitwall's type (raises MalformedRecord)."""
    opened_at = p.epoch_ms(data.get("creationTime"), "creationTime")
    if opened_at is None:
        raise MalformedRecord("creationTime: missing")
    assignee = p.mapping(data.get("assignee"), "assignee") or {}
    advisor = p.mapping(assignee.get("advisor"), "assignee.advisor") or {}
    vin = p.vin(data.get("vin"))
    return RepairOrderRecord(
        ro_number=p.required_text(data.get("documentNumber"), "documentNumber"),
        raw_status=p.required_text(data.get("status"), "status"),
        opened_at=opened_at,
        updated_at=p.epoch_ms(data.get("modifiedTime"), "modifiedTime"),
        promised_at=p.epoch_ms(data.get("promisedTime"), "promisedTime"),
        closed_at=p.epoch_ms(data.get("closedTime"), "closedTime")
        or p.epoch_ms(data.get("invoicedTime"), "invoicedTime"),
        advisor_id=p.text(advisor.get("id"), "assignee.advisor.id"),
        advisor_name=p.text(advisor.get("name"), "assignee.advisor.name"),
        customer=_customer(data),
        vehicle=DmsVehicle(vin=vin) if vin else None,
        lines=tuple(
            _job(job, f"jobs[{i}]", line_status_map)
            for i, job in enumerate(p.sequence(data.get("jobs"), "jobs"))
        ),
    )


def _job(item: Any, where: str, line_status_map: Mapping[str, LineStatus]) -> DmsLine:
    job = p.mapping(item, where) or {}
    operations = [
        p.mapping(op, f"{where}.operations[{n}]") or {}
        for n, op in enumerate(p.sequence(job.get("operations"), f"{where}.operations"))
    ]
    first = operations[0] if operations else {}
    op_code = (
        p.text(first.get("opcode"), f"{where}.operations[0].opcode")
        or p.text(job.get("opcode"), f"{where}.opcode")
        or p.required_text(job.get("taskCode"), f"{where}.opcode")
    )
    concern = p.mapping(job.get("concern"), f"{where}.concern") or {}
    amount = 0
    for n, op in enumerate(operations):
        labor = p.mapping(op.get("labor"), f"{where}.operations[{n}].labor") or {}
        if labor.get("saleAmount") is not None:
            amount += p.integer_cents(
                labor["saleAmount"], f"{where}.operations[{n}].labor.saleAmount"
            )
    return DmsLine(
        line_code=p.text(job.get("jobNumber"), f"{where}.jobNumber")
        or p.required_text(job.get("id"), f"{where}.id"),
        op_code=op_code,
        description=p.text(job.get("description"), f"{where}.description")
        or p.text(concern.get("text"), f"{where}.concern.text")
        or p.text(first.get("opcodeDescription"), f"{where}.operations[0].opcodeDescription")
        or "",
        amount_cents=amount,
        status=p.line_status(job.get("status"), line_status_map, f"{where}.status"),
    )


def _customer(data: dict[str, Any]) -> DmsCustomer | None:
    primary = p.mapping(data.get("primaryCustomer"), "primaryCustomer") or {}
    details = p.mapping(data.get("customer"), "customer") or {}
    external_id = p.text(primary.get("id"), "primaryCustomer.id") or p.text(
        details.get("id"), "customer.id"
    )
    if external_id is None:
        return None
    phones = []
    single = p.phone(details.get("phone"), None, "customer.phone")
    if single is not None:
        phones.append(single)
    for i, item in enumerate(
        p.sequence(details.get("phoneCommunications"), "customer.phoneCommunications")
    ):
        entry = p.mapping(item, f"customer.phoneCommunications[{i}]") or {}
        number = p.mapping(entry.get("phone"), f"customer.phoneCommunications[{i}].phone") or {}
        phone = p.phone(
            number.get("completeNumber"),
            entry.get("phoneType"),
            f"customer.phoneCommunications[{i}].phone.completeNumber",
        )
        if phone is not None:
            phones.append(phone)
    return DmsCustomer(
        external_id=external_id,
        first_name=p.text(details.get("firstName"), "customer.firstName"),
        last_name=p.text(details.get("lastName"), "customer.lastName"),
        phones=tuple(phones),
        email=p.text(details.get("email"), "customer.email"),
    )
