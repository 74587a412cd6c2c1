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
from typing import Any, NamedTuple

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


class RecordDigests(NamedTuple):
    """The hashes a poll compares a normalised record by, computed together."""

    content: str
    customer: str | None
    lines: str
    vehicle: str | None


def record_digests(record: RepairOrderRecord) -> RecordDigests:
    """The record's content, customer, lines and vehicle hashes, its content built once:
    the parts are slices of `RepairOrderRecord.content` (so each equals its own function
    below), and the poller works them out for every changed record."""
    content = record.content()
    customer, vehicle, lines = content[8], content[9], content[10]
    return RecordDigests(
        content=_digest(content),
        customer=None if customer is None else _digest(customer),
        lines=_digest(lines),
        vehicle=None if vehicle is None else _digest(vehicle[:4]),  # not the mileage
    )


def content_hash(record: RepairOrderRecord) -> str:
    """The record's content hash (see `RepairOrderRecord.content_hash`): equal -> no write."""
    return record.content_hash()


def lines_hash(lines: tuple[DmsLine, ...]) -> str:
    """Hash of an RO's job lines as the DMS lists them: unchanged -> the lines are not read."""
    return _digest(lines_content(lines))


def vehicle_hash(vehicle: DmsVehicle | None) -> str | None:
    """Hash of what an RO's vehicle step reads (VIN, year, make, model; not mileage)."""
    if vehicle is None:
        return None
    return _digest((vehicle.vin, vehicle.year, vehicle.make, vehicle.model))


def customer_hash(customer: DmsCustomer | None) -> str | None:
    """Hash of the customer part of a record: unchanged -> no customer matching needed."""
    if customer is None:
        return None
    return _digest(customer.content())


def _digest(content: tuple[Any, ...]) -> str:
    return hashlib.sha256(marshal.dumps(content, 2)).hexdigest()


def payload_hash(payload: Mapping[str, Any]) -> str:
    """Hash of a raw DMS payload: an identical re-read need not even be normalised.

    A full re-read hashes every record, so this is marshal (three times faster than
    sorted JSON). It follows the payload's key order: the same DMS sends its keys in
    the same order, and a reordered payload only costs a normalise and a content
    comparison, never a write. Version 2 has no interning flags, so equal payloads
    give equal bytes in every process.
    """
    try:  # a plain dict as it is (copying one cost a tenth of the hash)
        canonical = marshal.dumps(payload if type(payload) is dict else dict(payload), 2)
    except ValueError:  # a value marshal does not know (a datetime from a file adapter)
        canonical = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()
