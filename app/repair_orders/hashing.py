"""Hashes that let a poll skip work: raw payload, normalised content, customer part.

An RO whose payload hash is unchanged is not even normalised; one whose content hash
is unchanged costs no writes; one whose customer hash is unchanged skips customer
matching. Values are stored, so a change here costs each RO one re-normalise (never
a write: content is compared after normalising).
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.dms.base import DmsCustomer, DmsLine, RepairOrderRecord


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (None stays None): equal instants in any zone hash the same."""
    return None if value is None else value.astimezone(UTC).isoformat()


def _customer_content(customer: DmsCustomer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {
        "external_id": customer.external_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "phones": [{"number": p.number, "kind": p.kind} for p in customer.phones],
        "email": customer.email,
        "language": customer.language,
        "sms_consent": customer.sms_consent,
        "marketing_consent": customer.marketing_consent,
    }


def _digest(content: Any) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def content_hash(record: RepairOrderRecord) -> str:
    """The same value as `record.content_hash()`, built by hand because a poll hashes
    every record it reads and `dataclasses.asdict` is four times slower."""
    vehicle = record.vehicle
    return _digest(
        {
            "ro_number": record.ro_number,
            "raw_status": record.raw_status,
            "opened_at": iso(record.opened_at),
            "promised_at": iso(record.promised_at),
            "closed_at": iso(record.closed_at),
            "advisor_id": record.advisor_id,
            "advisor_name": record.advisor_name,
            "customer": _customer_content(record.customer),
            "vehicle": None
            if vehicle is None
            else {
                "vin": vehicle.vin,
                "year": vehicle.year,
                "make": vehicle.make,
                "model": vehicle.model,
                "mileage": vehicle.mileage,
            },
            "lines": [_line_content(line) for line in record.lines],
        }
    )


def _line_content(line: DmsLine) -> dict[str, Any]:
    return {
        "line_code": line.line_code,
        "op_code": line.op_code,
        "description": line.description,
        "amount_cents": line.amount_cents,
        "status": line.status,
    }


def customer_hash(customer: DmsCustomer | None) -> str | None:
    """Hash of the customer part of a record: unchanged -> no customer matching needed."""
    return None if customer is None else _digest(_customer_content(customer))


def payload_hash(payload: Mapping[str, Any]) -> str:
    """Hash of a raw DMS payload: an identical re-read need not even be normalised.

    A full re-read hashes every record, so this is marshal (three times faster than
    sorted JSON). It follows the payload's key order: the same DMS sends its keys in
    the same order, and a reordered payload only costs a normalise and a content
    comparison, never a write. Version 2 has no interning flags, so equal payloads
    give equal bytes in every process.
    """
    try:
        canonical = marshal.dumps(dict(payload), 2)
    except ValueError:  # a value marshal does not know (a datetime from a file adapter)
        canonical = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()
