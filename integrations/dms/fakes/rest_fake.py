"""A fake of Pitwall's REST bridge contract (DESIGN.md), with cursor paging.

``GET /repair-orders?updated_since=&cursor=`` (Bearer token), plus the optional
``GET /repair-orders/{ro_number}``. The dataset is either ``records`` (mutate it
from tests) or a ``source`` callable, e.g. a simulator, so the demo and
benchmarks can use ``kind = "rest"``::

    sim = SimulatorAdapter(seed=1, start_offset_minutes=180)
    with FakeServer(RestBridgeFake.from_simulator(sim).app) as server:
        ...  # [rooftop.dms] kind = "rest", base_url = server.url, token = "bridge-token"

Run standalone: ``python -m integrations.dms.fakes.rest_fake --port 9100``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.dms.fakes.common import FaultQueue, bearer


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class RestBridgeFake:
    """In-memory bridge; ``records`` maps RO number to a contract record."""

    def __init__(
        self,
        *,
        token: str = "bridge-token",
        page_size: int = 50,
        source: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.token = token
        self.page_size = page_size
        self.records: dict[str, dict[str, Any]] = {}
        self.source = source
        self.faults = FaultQueue()
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/repair-orders", self._list),
                Route("/repair-orders/{ro_number}", self._one),
            ]
        )

    @classmethod
    def from_simulator(cls, simulator: Any, **kwargs: Any) -> RestBridgeFake:
        """Serve a SimulatorAdapter's world as it stands at each request."""
        return cls(source=lambda: simulator.records_at(simulator.now()), **kwargs)

    def put(self, *records: dict[str, Any]) -> None:
        """Add or replace records (by ``ro_number``)."""
        for record in records:
            self.records[record["ro_number"]] = record

    def _dataset(self) -> list[dict[str, Any]]:
        return self.source() if self.source is not None else list(self.records.values())

    def _refuse(self, request: Request) -> Response | None:
        self.requests.append(dict(request.query_params))
        if bearer(request) != self.token:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return self.faults.take()

    async def _list(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        records = self._dataset()
        since_text = request.query_params.get("updated_since")
        if since_text is None:
            chosen = [r for r in records if r.get("closed_at") is None]
        else:
            try:
                since = _instant(since_text)
            except ValueError:
                return JSONResponse({"error": "updated_since is not ISO 8601"}, status_code=400)
            chosen = [r for r in records if _instant(r["updated_at"]) > since]
        chosen.sort(key=lambda r: (_instant(r["updated_at"]), r["ro_number"]))
        cursor = request.query_params.get("cursor")
        if cursor:
            try:
                after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
                key = (_instant(after["u"]), after["r"])
            except (ValueError, KeyError, binascii.Error):
                return JSONResponse({"error": "bad cursor"}, status_code=400)
            # Keyset paging: stable even when records change between pages.
            chosen = [r for r in chosen if (_instant(r["updated_at"]), r["ro_number"]) > key]
        page, rest = chosen[: self.page_size], chosen[self.page_size :]
        next_cursor = None
        if rest:
            last = page[-1]
            raw = json.dumps({"u": last["updated_at"], "r": last["ro_number"]}).encode()
            next_cursor = base64.urlsafe_b64encode(raw).decode()
        return JSONResponse({"repair_orders": page, "next_cursor": next_cursor})

    async def _one(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        wanted = request.path_params["ro_number"]
        for record in self._dataset():
            if record["ro_number"] == wanted:
                return JSONResponse(record)
        return JSONResponse({"error": "not found"}, status_code=404)


def main() -> None:
    """Serve the simulator's day through the bridge contract until interrupted."""
    import uvicorn

    from integrations.dms.simulator import SimulatorAdapter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--token", default="bridge-token")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--start-offset-minutes", type=float, default=180.0)
    args = parser.parse_args()
    simulator = SimulatorAdapter(
        seed=args.seed, speed=args.speed, start_offset_minutes=args.start_offset_minutes
    )
    fake = RestBridgeFake.from_simulator(simulator, token=args.token)
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
