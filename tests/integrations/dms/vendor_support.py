"""Reading the sourced payloads in ``sources/`` and serving fakes, for the vendor tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SOURCES = Path(__file__).resolve().parent / "sources"


def source_json(name: str) -> Any:
    """A JSON payload reconstructed from a public source (see facts/dms.md)."""
    return json.loads((SOURCES / name).read_text(encoding="utf-8"))


def source_bytes(name: str) -> bytes:
    """An XML payload reconstructed from a public source, as bytes."""
    return (SOURCES / name).read_bytes()


class Clock:
    """A settable UTC clock for adapters (token lifetimes, delta windows)."""

    def __init__(self, now: Any) -> None:
        self.now = now

    def __call__(self) -> Any:
        return self.now


def opentrack_row(number: str = "6000082", **overrides: Any) -> dict[str, Any]:
    """RO 6000082 of the sourced OpenTrack sample, flattened as the adapter reads it, under
    another number; ``overrides`` replace fields (``Details`` replaces the rows)."""
    from integrations.dms.dealertrack import parse_xml, soap

    root = parse_xml(source_bytes("opentrack_open_repair_order_lookup.xml"))
    rows = [soap.flatten(r) for r in root.iter() if soap.local(r.tag) == "Result"]
    (row,) = [r for r in rows if r["RepairOrderNumber"] == "6000082"]
    row.update(RepairOrderNumber=number, SortKey=number, **overrides)
    return row


def opentrack_line(number: str, op_code: str, price: str, status: str = "") -> list[dict[str, Any]]:
    """One service line as OpenTrack writes it: an A row (the labor op, its LineStatus and
    empty UpsellFlag) and the L/TT row that bills it."""
    return [
        {"ServiceLineNumber": number, "LineType": "A", "TransCode": "CP", "LineStatus": status,
         "LaborOpCode": op_code, "Comments": f"{op_code} requested", "NetPrice": "0",
         "UpsellFlag": ""},
        {"ServiceLineNumber": number, "LineType": "L", "TransCode": "TT", "LineStatus": "",
         "LaborOpCode": op_code, "NetPrice": price, "UpsellFlag": ""},
    ]  # fmt: skip


def tekion_ro(number: str, modified: int, **overrides: Any) -> dict[str, Any]:
    """The sourced Tekion search result (T4's keys) under another number and time."""
    import copy

    record: dict[str, Any] = copy.deepcopy(
        source_json("tekion_repair_orders_search.json")["data"]["results"][0]
    )
    record.update(
        documentId=f"ro-{number}",
        documentNumber=number,
        creationTime=modified - 3_600_000,
        modifiedTime=modified,
        primaryCustomer={"id": f"rc-{number}"},
    )
    record.update(overrides)
    return record


def tekion_jobs() -> list[dict[str, Any]]:
    """The sourced jobs answer's jobs."""
    jobs: list[dict[str, Any]] = source_json("tekion_repair_order_jobs.json")["data"]
    return jobs


def star_order(number: str, status: str = "OPEN", **header: Any) -> dict[str, Any]:
    """The sourced ShowRepairOrder's RepairOrder noun under another number and status;
    ``header`` replaces RepairOrderHeader children."""
    from integrations.dms.star import bod

    (order,) = bod.repair_orders(source_bytes("star_show_repair_order.xml"))
    order["RepairOrderHeader"]["DocumentIdentificationGroup"]["DocumentIdentification"][
        "DocumentID"
    ] = number
    order["RepairOrderHeader"]["RepairOrderStatus"]["StatusCode"] = status
    order["RepairOrderHeader"].update(header)
    return order
