"""A fake of Fortellis' CDK Drive Service Repair Order API v1, in its sourced shapes.

The wire format and its sources are in ``integrations/dms/cdk/adapter.py``. Routes
(under ``BASE_PATH``): ``/open``, ``/open/delta``, ``/closed/delta``, ``/wip`` answer a
long-running operation (HTTP 202, ``status: received``, ``checkStatusAfterSeconds``);
``/long-operations/{id}/status`` reports ``received`` for ``polls_until_complete``
polls, then ``complete``; ``/long-operations/{id}/result`` answers ``{data: [...]}``.
The token is ``POST TOKEN_PATH`` (Basic auth, ``grant_type=client_credentials``,
``scope=anonymous``).

Records are stored in C1's ``RepairOrderResponse`` shape; since those carry no
modification time, ``put(record, at=...)`` says when each one changed (what the
deltas filter on). Awkward parts on request: ``operation_status = "error"``,
``expire_results`` (a result already gone: 404), ``revoke_tokens_after`` (a token that
expires mid-poll: every token issued so far is refused after that many calls).

Run standalone: ``python -m integrations.dms.fakes.cdk_fake --port 9101``
(API key ``pitwall`` / secret ``secret``, subscription ``sub-1``; an empty dataset).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.dms.fakes.common import FaultQueue, bearer

BASE_PATH = "/cdk/drive/servicerepairorder/v1"
TOKEN_PATH = "/oauth2/aus1p1ixy7YL8cMq02p7/v1/token"


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class CdkFake:
    """In-memory CDK dealer. Tests mutate ``records`` (through ``put``) and the knobs."""

    def __init__(
        self,
        *,
        client_id: str = "pitwall",
        client_secret: str = "secret",
        subscription_id: str = "sub-1",
        token_ttl: int = 3600,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.subscription_id = subscription_id
        self.token_ttl = token_ttl
        self.records: dict[str, dict[str, Any]] = {}
        self.changed_at: dict[str, datetime] = {}
        self.tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.tokens_issued = 0
        self.polls_until_complete = 2
        self.check_status_after: float | None = 30
        self.operation_status = "complete"  # what a finished operation reports
        self.expire_results = 0  # the next N results are already gone (404)
        self.revoke_tokens_after: int | None = None
        self.calls = 0
        self.queries: list[tuple[str, dict[str, str]]] = []
        self.request_ids: list[str] = []
        self.faults = FaultQueue()
        self._operations: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        query_routes = [
            Route(f"{BASE_PATH}/{name}", self._query_route(name))
            for name in ("open", "open/delta", "closed", "closed/delta", "wip")
        ]
        self.app = Starlette(
            routes=[
                Route(TOKEN_PATH, self._token, methods=["POST"]),
                *query_routes,
                Route(f"{BASE_PATH}/long-operations/{{op_id}}/status", self._status),
                Route(f"{BASE_PATH}/long-operations/{{op_id}}/result", self._result),
            ]
        )

    def put(self, *records: dict[str, Any], at: datetime | None = None) -> None:
        """Add or replace records by ``roNumber``, changed at ``at`` (default: now)."""
        for record in records:
            self.records[record["roNumber"]] = record
            self.changed_at[record["roNumber"]] = at or datetime.now(UTC)

    def expire_tokens(self) -> None:
        """Refuse every token issued so far, as Fortellis may before ``expires_in``."""
        self.tokens.clear()

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if form.get("scope") != "anonymous":
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.monotonic() + self.token_ttl
        self.tokens_issued += 1
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "access_token": token,
                "scope": "anonymous",
            }
        )

    def _refuse(self, request: Request) -> Response | None:
        with self._lock:
            self.calls += 1
            if self.revoke_tokens_after is not None and self.calls > self.revoke_tokens_after:
                self.revoke_tokens_after = None
                self.tokens.clear()  # the token expires mid-poll
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

    def _select(self, name: str, params: dict[str, str]) -> list[dict[str, Any]] | Response:
        closed = name.startswith("closed")
        items = [r for r in self.records.values() if bool(r.get("closedDate")) == closed]
        if name.endswith("delta"):
            try:
                start = _instant(params["startDate"])
                end = _instant(params["endDate"]) if params.get("endDate") else None
            except (KeyError, ValueError):
                return JSONResponse({"error": "startDate (ISO 8601) is required"}, 400)
            items = [
                r
                for r in items
                if start < self.changed_at[r["roNumber"]]
                and (end is None or self.changed_at[r["roNumber"]] <= end)
            ]
        return sorted(items, key=lambda r: (self.changed_at[r["roNumber"]], r["roNumber"]))

    def _envelope(self, op_id: str, status: str) -> dict[str, Any]:
        operation = self._operations[op_id]
        return {
            "operationId": op_id,
            "status": status,
            "receivedDateTime": operation["received"],
            "updatedDateTime": datetime.now(UTC).isoformat(),
            "checkStatusAfterSeconds": self.check_status_after,
            "_links": {
                "status": {"href": f"{BASE_PATH}/long-operations/{op_id}/status"},
                "result": {"href": f"{BASE_PATH}/long-operations/{op_id}/result"},
            },
        }

    def _query_route(self, name: str) -> Any:
        async def route(request: Request) -> Response:
            refused = self._refuse(request)
            if refused is not None:
                return refused
            params = dict(request.query_params)
            selected = self._select(name, params)
            if isinstance(selected, Response):
                return selected
            self.queries.append((name, params))
            with self._lock:
                op_id = f"op-{next(self._ids)}"
                self._operations[op_id] = {
                    "items": selected,
                    "polls": 0,
                    "received": datetime.now(UTC).isoformat(),
                }
            return JSONResponse(self._envelope(op_id, "received"), status_code=202)

        return route

    async def _status(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        op_id = request.path_params["op_id"]
        operation = self._operations.get(op_id)
        if operation is None:
            return JSONResponse({"error": "unknown operation"}, status_code=404)
        operation["polls"] += 1
        done = operation["polls"] >= self.polls_until_complete
        return JSONResponse(self._envelope(op_id, self.operation_status if done else "received"))

    async def _result(self, request: Request) -> Response:
        refused = self._refuse(request)
        if refused is not None:
            return refused
        operation = self._operations.get(request.path_params["op_id"])
        if operation is None or self.expire_results > 0:
            self.expire_results = max(0, self.expire_results - 1)
            return JSONResponse({"error": "result expired"}, status_code=404)
        if operation["polls"] < self.polls_until_complete:
            return JSONResponse({"error": "operation not complete"}, status_code=409)
        return JSONResponse({"data": operation["items"]})


def main() -> None:
    """Serve an empty CDK fake until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Fortellis CDK Service Repair Order fake")
    parser.add_argument("--port", type=int, default=9101)
    args = parser.parse_args()
    uvicorn.run(CdkFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
