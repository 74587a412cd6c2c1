"""Measure a poll of 50,000 open ROs with 5% changed (not a test).

    python -m tests.app.repair_orders.measure_poll [--count 50000] [--backend sqlite|postgres|both]

Seeds the ROs through a first poll, then changes 5% of them (a stage move) and
times the second poll, split into normalising (the adapter's work) and storing.
Fetching is excluded: records are served from memory in pages of 1,000.

Records carry no customer: in steady state an RO's customer part is unchanged and
costs one hash comparison (`customer_hash`), and leaving it out keeps seeding
50,000 ROs (whose first poll matches every customer, ~10 ms each) to minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.db import make_engine, make_session_factory
from app.dealers.models import Rooftop
from app.deps import Database
from app.repair_orders.poller import poll_rooftop
from integrations.dms.base import DmsPage, RawRecord, RepairOrderRecord
from integrations.dms.rest import normalise_bridge_record
from tests.db_support import DEFAULT_PG, create_pg_database, drop_pg_database, upgrade
from tests.support import load_sample_dealer

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
STATUSES = ("OPEN", "DIAG", "WIP", "QC")


def record(i: int, status: str) -> dict[str, Any]:
    return {
        "ro_number": f"R{i:06d}",
        "status": status,
        "opened_at": "2026-11-22T15:02:00Z",
        "updated_at": f"2026-11-22T17:{i % 60:02d}:00Z",
        "promised_at": "2026-11-22T22:00:00Z",
        "closed_at": None,
        "advisor": {"id": "A7", "name": "Dana Ruiz"},
        "vehicle": {"vin": f"JTMW1RFV5MD{i:06d}", "year": 2021, "make": "Toyota", "model": "RAV4"},
        "lines": [
            {
                "line": "A",
                "op_code": "OILCHG",
                "description": "Oil and filter",
                "status": "approved",
                "amount": "89.95",
            }
        ],
    }


class MemoryDms:
    kind, snapshot = "rest", False

    def __init__(self, payloads: list[dict[str, Any]]) -> None:
        self.payloads = payloads
        self.normalise_seconds = 0.0

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        for start in range(0, len(self.payloads), 1000):
            chunk = self.payloads[start : start + 1000]
            yield DmsPage(records=[RawRecord(payload=p, ro_number=p["ro_number"]) for p in chunk])

    def normalise(self, raw: RawRecord) -> RepairOrderRecord:
        t = time.perf_counter()
        try:
            return normalise_bridge_record(raw.payload)
        finally:
            self.normalise_seconds += time.perf_counter() - t

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        return None

    def check(self) -> None: ...

    def close(self) -> None: ...


def timed_poll(
    database: Database, rooftop_id: int, payloads: list[dict[str, Any]], label: str
) -> None:
    dms = MemoryDms(payloads)
    t, cpu = time.perf_counter(), time.process_time()
    result = poll_rooftop(
        database,
        rooftop_id=rooftop_id,
        adapter_factory=lambda _r: dms,
        hooks=[],
        clock=lambda: NOW,
        worker_id="bench",
    )
    total, cpu = time.perf_counter() - t, time.process_time() - cpu
    # CPU time of this process as well: the machine is shared, wall time is noisy.
    print(
        f"  {label}: {result.counts} total {total:.2f}s wall, {cpu:.2f}s CPU here "
        f"(normalise {dms.normalise_seconds:.2f}s, store {total - dms.normalise_seconds:.2f}s)"
    )


def measure(url: str, count: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    load_sample_dealer(database)
    with database.transaction() as session:
        rooftop_id = session.scalars(
            select(Rooftop.id).where(Rooftop.slug == "bayview-toyota")
        ).one()
    payloads = [record(i, STATUSES[i % 3]) for i in range(count)]
    t = time.perf_counter()
    poll_rooftop(
        database,
        rooftop_id=rooftop_id,
        adapter_factory=lambda _r: MemoryDms(payloads),
        hooks=[],
        clock=lambda: NOW,
        worker_id="bench",
    )
    seeded = time.perf_counter() - t
    if engine.dialect.name == "postgresql":
        # A live database has statistics; a freshly seeded one must be told, or the
        # planner scans 50,000 rows for each page's lookup.
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    step = 20  # every 20th RO moves on: 5%
    for i in range(0, count, step):
        payloads[i] = dict(payloads[i], status="QC", updated_at="2026-11-22T17:59:30Z")
    timed_poll(database, rooftop_id, payloads, "5% changed, other payloads as stored")
    # Same content, new payloads (a DMS that restamps every record): hashing does it all.
    restamped = [dict(p, updated_at="2026-11-22T17:59:59Z") for p in payloads]
    timed_poll(database, rooftop_id, restamped, "0% changed, every payload restamped")
    print(f"  (seeding {count} ROs took {seeded:.1f}s)")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"SQLite, {args.count} open ROs")
            measure(f"sqlite:///{tmp}/measure.db", args.count)
    if args.backend in ("postgres", "both"):
        print(f"PostgreSQL, {args.count} open ROs")
        url = create_pg_database(DEFAULT_PG, "pitwall_measure_poll")
        try:
            measure(url, args.count)
        finally:
            drop_pg_database(DEFAULT_PG, "pitwall_measure_poll")


if __name__ == "__main__":
    main()
