"""A fake of Tekion's ``POST /repair-orders:search``; the wire format is in ``tekion.py``.

Records live in ``records`` (roNumber -> Tekion-shaped record with
``modifiedTime``). ``faults.add(429, retry_after=3)`` answers rate-limited.

Run standalone: ``python -m integrations.dms.fakes.tekion_fake --port 9102``
(token ``tekion-token``, dealer ``D100``; an empty dataset).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.dms.fakes.common import FaultQueue, bearer


class TekionFake:
    """In-memory Tekion dealer."""

    def __init__(self, *, token: str = "tekion-token", dealer_id: str = "D100") -> None:
        self.token = token
        self.dealer_id = dealer_id
        self.records: dict[str, dict[str, Any]] = {}
        self.faults = FaultQueue()
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[Route("/repair-orders:search", self._search, methods=["POST"])]
        )

    def put(self, *records: dict[str, Any]) -> None:
        """Add or replace records by ``roNumber``."""
        for record in records:
            self.records[record["roNumber"]] = record

    async def _search(self, request: Request) -> Response:
        self.calls += 1
        if bearer(request) != self.token:
            return JSONResponse(
                {"error": "UNAUTHORIZED", "message": "invalid token"}, status_code=401
            )
        if request.headers.get("dealerid") != self.dealer_id:
            return JSONResponse(
                {"error": "FORBIDDEN", "message": "unknown dealer"}, status_code=403
            )
        fault = self.faults.take()
        if fault is not None:
            return fault
        try:
            body = await request.json()
            filter_ = body["filter"]
            page_size = int(body.get("pageSize", 100))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "BAD_REQUEST"}, status_code=400)
        self.bodies.append(body)
        items = list(self.records.values())
        if "modifiedTime" in filter_:
            after = int(filter_["modifiedTime"]["gt"])
            items = [r for r in items if r["modifiedTime"] > after]
        if filter_.get("openOnly"):
            items = [r for r in items if not r.get("closedTime")]
        if "roNumber" in filter_:
            items = [r for r in items if r["roNumber"] == filter_["roNumber"]]
        items.sort(key=lambda r: (r["modifiedTime"], r["roNumber"]))
        if body.get("pageToken"):
            try:
                after_key = json.loads(base64.urlsafe_b64decode(body["pageToken"]))
            except (ValueError, binascii.Error):
                return JSONResponse({"error": "BAD_PAGE_TOKEN"}, status_code=400)
            items = [r for r in items if [r["modifiedTime"], r["roNumber"]] > after_key]
        page, rest = items[:page_size], items[page_size:]
        token = None
        if rest:
            key = [page[-1]["modifiedTime"], page[-1]["roNumber"]]
            token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        return JSONResponse({"data": page, "meta": {"nextPageToken": token}})


def main() -> None:
    """Serve an empty Tekion fake until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Tekion APC fake")
    parser.add_argument("--port", type=int, default=9102)
    args = parser.parse_args()
    uvicorn.run(TekionFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
