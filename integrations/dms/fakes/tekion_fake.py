"""A fake of Tekion's APC v4.0.0 in its second-hand shapes (see ``dms/tekion/adapter.py``).

Routes under ``/openapi``: ``POST /public/tokens`` (form ``app_id``, ``secret_key`` ->
``{status, data {token_type, access_token, expire_in, expire_on, issued_at}}``),
``POST /v4.0.0/repair-orders:search`` (``filters`` on ``modifiedTime`` GTE/LTE and
``documentNumber`` IN, ``pageSize`` capped at 20, ``paginationToken`` -> ``{data
{results}, meta {totalCount, nextPageToken}}``), ``GET /v4.0.0/repair-orders/{id}/jobs``
and ``GET /v4.0.0/repair-orders/{id}/ro-customers/{customerId}``. Every call but the
token needs ``Authorization: Bearer``, ``app_id`` and ``dealer_id``.

``records`` maps documentId to a search result; ``jobs`` and ``customers`` hold what the
two detail routes answer. ``drift_once`` makes the next page token wander outside the
time filter, as T4 saw; ``faults.add(429, retry_after=3)`` answers ``OVERALL_QUOTA``.

Run standalone: ``python -m integrations.dms.fakes.tekion_fake --port 9102``
(app ``pitwall-app`` / ``secret``, dealer ``techmotors_4_0``; an empty dataset).
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.dms.fakes.common import FaultQueue, bearer

BASE_PATH = "/openapi"
MAX_PAGE = 20


class TekionFake:
    """In-memory Tekion dealer."""

    def __init__(
        self,
        *,
        app_id: str = "pitwall-app",
        secret_key: str = "secret",
        dealer_id: str = "techmotors_4_0",
        token_ttl: int = 86399,
    ) -> None:
        self.app_id, self.secret_key, self.dealer_id = app_id, secret_key, dealer_id
        self.token_ttl = token_ttl
        self.records: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.drift_once = False
        self.faults = FaultQueue()
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        self.app = Starlette(
            routes=[
                Route(f"{BASE_PATH}/public/tokens", self._token, methods=["POST"]),
                Route(f"{BASE_PATH}/v4.0.0/repair-orders:search", self._search, methods=["POST"]),
                Route(f"{BASE_PATH}/v4.0.0/repair-orders/{{ro_id}}/jobs", self._jobs),
                Route(
                    f"{BASE_PATH}/v4.0.0/repair-orders/{{ro_id}}/ro-customers/{{customer_id}}",
                    self._customer,
                ),
            ]
        )

    def put(
        self,
        record: dict[str, Any],
        *,
        jobs: list[dict[str, Any]] | None = None,
        customer: dict[str, Any] | None = None,
    ) -> None:
        """Add or replace one RO (by ``documentId``) with its jobs and customer."""
        self.records[record["documentId"]] = record
        self.jobs[record["documentId"]] = jobs or []
        if customer is not None:
            self.customers[record["primaryCustomer"]["id"]] = customer

    def expire_tokens(self) -> None:
        """Refuse every token issued so far."""
        self.tokens.clear()

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        if (form.get("app_id"), form.get("secret_key")) != (self.app_id, self.secret_key):
            return JSONResponse(
                {"status": "failure", "data": {"message": "invalid app_id or secret_key"}}, 401
            )
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        now = int(time.time())
        return JSONResponse(
            {
                "status": "success",
                "data": {
                    "token_type": "Bearer",
                    "access_token": token,
                    "expire_in": self.token_ttl,
                    "expire_on": now + self.token_ttl,
                    "issued_at": now,
                },
            }
        )

    def _refuse(self, request: Request) -> Response | None:
        self.calls += 1
        token = bearer(request)
        if token is None or self.tokens.get(token, 0) < time.monotonic():
            return JSONResponse({"status": "failure", "error": "UNAUTHORIZED"}, status_code=401)
        if request.headers.get("app_id") != self.app_id:
            return JSONResponse({"status": "failure", "error": "UNKNOWN_APP"}, status_code=403)
        if request.headers.get("dealer_id") != self.dealer_id:
            return JSONResponse({"status": "failure", "error": "UNKNOWN_DEALER"}, status_code=403)
        fault = self.faults.take()
        if fault is not None and fault.status_code == 429:
            headers = {k: v for k, v in fault.headers.items() if k.lower() == "retry-after"}
            return JSONResponse({"error": "OVERALL_QUOTA"}, status_code=429, headers=headers)
        return fault

    async def _search(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        try:
            body = await request.json()
            filters = body.get("filters") or []
            size = min(int(body.get("pageSize", MAX_PAGE)), MAX_PAGE)
        except (ValueError, TypeError, AttributeError):
            return JSONResponse({"error": "BAD_REQUEST"}, status_code=400)
        self.bodies.append(body)
        items = list(self.records.values())
        for f in filters:
            field, operator, values = f.get("field"), f.get("operator"), f.get("values") or []
            if field == "modifiedTime" and operator == "GTE":
                items = [r for r in items if r["modifiedTime"] >= values[0]]
            elif field == "modifiedTime" and operator == "LTE":
                items = [r for r in items if r["modifiedTime"] <= values[0]]
            elif field == "documentNumber" and operator == "IN":
                items = [r for r in items if r["documentNumber"] in values]
            else:
                return JSONResponse({"error": f"unsupported filter {f!r}"}, status_code=400)
        items.sort(key=lambda r: (r["modifiedTime"], r["documentId"]))
        total = len(items)
        if body.get("paginationToken"):
            after = json.loads(base64.urlsafe_b64decode(body["paginationToken"]))
            if after == "drift":
                items = sorted(self.records.values(), key=lambda r: -r["modifiedTime"])
            else:
                items = [r for r in items if [r["modifiedTime"], r["documentId"]] > after]
        page, rest = items[:size], items[size:]
        token = None
        if rest:
            key: Any = [page[-1]["modifiedTime"], page[-1]["documentId"]]
            if self.drift_once:
                self.drift_once, key = False, "drift"
            token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        return JSONResponse(
            {
                "status": "success",
                "data": {"results": page},
                "meta": {"totalCount": total, "nextPageToken": token},
            }
        )

    async def _jobs(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        ro_id = request.path_params["ro_id"]
        if ro_id not in self.records:
            return JSONResponse({"status": "failure", "error": "NOT_FOUND"}, status_code=404)
        return JSONResponse({"status": "success", "data": self.jobs.get(ro_id, [])})

    async def _customer(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        customer = self.customers.get(request.path_params["customer_id"])
        if customer is None:
            return JSONResponse({"status": "failure", "error": "NOT_FOUND"}, status_code=404)
        return JSONResponse({"status": "success", "data": customer})


def main() -> None:
    """Serve an empty Tekion fake until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Tekion APC fake")
    parser.add_argument("--port", type=int, default=9102)
    args = parser.parse_args()
    uvicorn.run(TekionFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
