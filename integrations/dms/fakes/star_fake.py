"""A middleware serving STAR ShowRepairOrder documents over HTTP (``kind = "star"``, ``url``).

``GET /star/repair-orders?since=<ISO 8601>`` with an optional Bearer token answers one
ShowRepairOrder document with the ROs changed after ``since`` (every RO without it).
``put(order, at=...)`` stores a RepairOrder noun as `bod.to_dict` reads it.
``write_drop_file(folder, name, orders)`` writes the same document for the folder mode.

Run standalone: ``python -m integrations.dms.fakes.star_fake --port 9104`` (token
``star-token``; an empty dataset).
"""

from __future__ import annotations

import argparse
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.dms.fakes.common import FaultQueue, bearer
from integrations.dms.star import bod, fields

PATH = "/star/repair-orders"
_ids = itertools.count(1)


def document(orders: list[dict[str, Any]]) -> bytes:
    """A ShowRepairOrder document holding ``orders``."""
    return bod.show_repair_order(
        orders, bod_id=f"bod-{next(_ids)}", created=datetime.now(UTC).isoformat()
    )


def write_drop_file(folder: Path, name: str, orders: list[dict[str, Any]]) -> Path:
    """Drop a ShowRepairOrder file, written whole then renamed, as an exporter should."""
    target = folder / name
    partial = folder / (name + ".part")
    partial.write_bytes(document(orders))
    partial.rename(target)
    return target


class StarFake:
    """In-memory middleware of one rooftop."""

    def __init__(self, *, token: str | None = "star-token") -> None:
        self.token = token
        self.orders: dict[str, dict[str, Any]] = {}
        self.changed_at: dict[str, datetime] = {}
        self.faults = FaultQueue()
        self.raw_answer: bytes | None = None
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route(PATH, self._list)])

    def put(self, *orders: dict[str, Any], at: datetime | None = None) -> None:
        """Add or replace RepairOrder nouns (by DocumentID), changed at ``at``."""
        for order in orders:
            number = fields.ro_number(order)
            assert number is not None, "a RepairOrder needs its DocumentID"
            self.orders[number] = order
            self.changed_at[number] = at or datetime.now(UTC)

    async def _list(self, request: Request) -> Response:
        self.requests.append(dict(request.query_params))
        if self.token is not None and bearer(request) != self.token:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        fault = self.faults.take()
        if fault is not None:
            return fault
        if self.raw_answer is not None:
            return Response(self.raw_answer, media_type="application/xml")
        chosen = list(self.orders)
        if "since" in request.query_params:
            try:
                since = datetime.fromisoformat(request.query_params["since"].replace("Z", "+00:00"))
            except ValueError:
                return JSONResponse({"error": "since is not ISO 8601"}, status_code=400)
            chosen = [n for n in chosen if self.changed_at[n] > since]
        chosen.sort(key=lambda n: (self.changed_at[n], n))
        return Response(document([self.orders[n] for n in chosen]), media_type="application/xml")


def main() -> None:
    """Serve an empty STAR middleware until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="STAR ShowRepairOrder middleware fake")
    parser.add_argument("--port", type=int, default=9104)
    args = parser.parse_args()
    uvicorn.run(StarFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
