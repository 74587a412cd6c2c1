"""Hashes that let a poll skip work: raw payload, normalised content, customer, lines.

An RO whose payload hash is unchanged is not even normalised; one whose content hash
is unchanged costs no writes; one whose customer hash is unchanged skips customer
matching; one whose lines (vehicle) hash is unchanged does not read or write its lines
(vehicle).
Values are stored, so a change here costs each RO one re-normalise (never a write:
content is compared after normalising).
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.dms.base import (
    DmsCustomer,
    DmsLine,
    DmsVehicle,
    RepairOrderRecord,
    lines_content,
)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (None stays None): equal instants in any zone hash the same."""
    return None if value is None else value.astimezone(UTC).isoformat()


def content_hash(record: RepairOrderRecord) -> str:
    """The record's content hash (see `RepairOrderRecord.content_hash`): equal -> no write."""
    return record.content_hash()


def lines_hash(lines: tuple[DmsLine, ...]) -> str:
    """Hash of an RO's job lines as the DMS lists them: unchanged -> the lines are not read."""
    return hashlib.sha256(marshal.dumps(lines_content(lines), 2)).hexdigest()


def vehicle_hash(vehicle: DmsVehicle | None) -> str | None:
    """Hash of what an RO's vehicle step reads (VIN, year, make, model; not mileage)."""
    if vehicle is None:
        return None
    content = (vehicle.vin, vehicle.year, vehicle.make, vehicle.model)
    return hashlib.sha256(marshal.dumps(content, 2)).hexdigest()


def customer_hash(customer: DmsCustomer | None) -> str | None:
    """Hash of the customer part of a record: unchanged -> no customer matching needed."""
    if customer is None:
        return None
    return hashlib.sha256(marshal.dumps(customer.content(), 2)).hexdigest()


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
