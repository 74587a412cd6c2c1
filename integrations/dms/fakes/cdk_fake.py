"""A fake of CDK's Fortellis Service Repair Order API; the wire format is in ``cdk.py``.

Routes: ``POST /oauth2/token``, ``GET /repair-orders/v1/open``,
``/open/delta?startDate=&endDate=``, ``/operations/{id}``,
``/operations/{id}/result``, ``/{roNumber}``. Paging is ``?page=N`` (1-based)
with ``links: [{rel: next}]``. Records are stored in CDK's own shape in
``records`` (roNumber -> record) and must carry ``lastModifiedDate``.

Run standalone: ``python -m integrations.dms.fakes.cdk_fake --port 9101``
(client ``pitwall`` / ``secret``, subscription ``sub-1``; an empty dataset).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import secrets
import threading
import time
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.dms.fakes.common import FaultQueue, bearer


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class CdkFake:
    """In-memory CDK dealer. Tests mutate ``records`` and the knobs below."""

    def __init__(
        self,
        *,
        client_id: str = "pitwall",
        client_secret: str = "secret",
        subscription_id: str = "sub-1",
        token_ttl: int = 3600,
        page_size: int = 50,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.subscription_id = subscription_id
        self.token_ttl = token_ttl
        self.page_size = page_size
        self.records: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.tokens_issued = 0
        self.delta_as_operation = False  # answer delta/open with 202 + operation
        self.operation_running_polls = 2  # "running" answers before "succeeded"
        self._operations: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.faults = FaultQueue()
        self.request_ids: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/oauth2/token", self._token, methods=["POST"]),
                Route("/repair-orders/v1/open", self._open),
                Route("/repair-orders/v1/open/delta", self._delta),
                Route("/repair-orders/v1/operations/{op_id}", self._operation),
                Route("/repair-orders/v1/operations/{op_id}/result", self._result),
                Route("/repair-orders/v1/{ro_number}", self._one),
            ]
        )

    def put(self, *records: dict[str, Any]) -> None:
        """Add or replace records by ``roNumber``."""
        for record in records:
            self.records[record["roNumber"]] = record

    def expire_tokens(self) -> None:
        """Revoke every issued token, as Fortellis may before ``expires_in``."""
        self.tokens.clear()

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        )

    def _refuse(self, request: Request) -> Response | None:
        token = bearer(request)
        if token is None or self.tokens.get(token, 0) < time.monotonic():
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        if request.headers.get("subscription-id") != self.subscription_id:
            return JSONResponse({"error": "unknown Subscription-Id"}, status_code=403)
        request_id = request.headers.get("request-id")
        if not request_id:
            return JSONResponse({"error": "Request-Id is required"}, status_code=400)
        self.request_ids.append(request_id)
        return self.faults.take()

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        items = sorted(items, key=lambda r: (_instant(r["lastModifiedDate"]), r["roNumber"]))
        page = int(request.query_params.get("page", "1"))
        start = (page - 1) * self.page_size
        body: dict[str, Any] = {"items": items[start : start + self.page_size], "links": []}
        if start + self.page_size < len(items):
            query = dict(request.query_params, page=str(page + 1))
            href = request.url.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
            body["links"].append({"rel": "next", "href": href})
        return JSONResponse(body)

    def _open_items(self) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if not r.get("closeDate")]

    def _delta_items(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if start < _instant(r["lastModifiedDate"]) <= end]

    def _maybe_operation(self, items: list[dict[str, Any]]) -> Response | None:
        if not self.delta_as_operation:
            return None
        with self._lock:
            op_id = str(next(self._ids))
            self._operations[op_id] = {"items": items, "polls": 0}
        return JSONResponse(
            {"id": op_id, "status": "running"},
            status_code=202,
            headers={"Location": f"/repair-orders/v1/operations/{op_id}"},
        )

    async def _open(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        items = self._open_items()
        return self._maybe_operation(items) or self._page(request, items)

    async def _delta(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            start = _instant(request.query_params["startDate"])
            end = _instant(request.query_params["endDate"])
        except (KeyError, ValueError):
            return JSONResponse(
                {"error": "startDate and endDate (ISO 8601) are required"}, status_code=400
            )
        items = self._delta_items(start, end)
        return self._maybe_operation(items) or self._page(request, items)

    async def _operation(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        op_id = request.path_params["op_id"]
        operation = self._operations.get(op_id)
        if operation is None:
            return JSONResponse({"error": "no such operation"}, status_code=404)
        operation["polls"] += 1
        if operation["polls"] <= self.operation_running_polls:
            return JSONResponse({"id": op_id, "status": "running"})
        return JSONResponse(
            {
                "id": op_id,
                "status": "succeeded",
                "links": [
                    {"rel": "result", "href": f"/repair-orders/v1/operations/{op_id}/result"}
                ],
            }
        )

    async def _result(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        operation = self._operations.get(request.path_params["op_id"])
        if operation is None:
            return JSONResponse({"error": "no such operation"}, status_code=404)
        return self._page(request, operation["items"])

    async def _one(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        record = self.records.get(request.path_params["ro_number"])
        if record is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(record)


def main() -> None:
    """Serve an empty CDK fake until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="CDK Fortellis fake")
    parser.add_argument("--port", type=int, default=9101)
    args = parser.parse_args()
    uvicorn.run(CdkFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
