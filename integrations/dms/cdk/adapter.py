"""Calls to Fortellis' CDK Drive Service Repair Order API v1.

Sources (facts/dms.md §1): C1 ``rrandall91/fortellis-api-nodejs-client``@9c4e6b7
(``src/auth.ts``, ``src/apis/index.ts``, ``src/apis/cdkdrivegetrepairorder/v1.ts``),
C2 ``Fortellis/client-credentials-for-python``, C3 a copy of the Fortellis docs, C4
second-hand notes on the Fortellis PDF.

- Token [V C1-C3]: ``POST https://identity.fortellis.io/oauth2/aus1p1ixy7YL8cMq02p7/v1/token``
  with HTTP Basic ``client_id:client_secret`` (the Fortellis app's API key and secret)
  and the form ``grant_type=client_credentials&scope=anonymous`` -> ``{token_type,
  expires_in, access_token, scope}``. Kept until 5 minutes (at most a tenth of its
  life) before ``expires_in`` runs out; a 401 on a cached token fetches one fresh
  token and tries once more.
- Every call [V C1, C3]: ``Authorization: Bearer``, ``Subscription-Id`` (the dealer's
  activation of the app), ``Request-Id`` (a fresh UUID per attempt), ``Accept:
  application/json``; ``Department-Id`` only when configured (v3 wants it [S C4]).
- Base [V C1]: ``https://api.fortellis.io/cdk/drive/servicerepairorder/v1`` (test:
  ``https://api.fortellis.io/cdk-test/drive/servicerepairorder/v1``).
- Queries [V C1]: ``GET /open`` (bulk), ``/open/delta?startDate=&endDate=``,
  ``/closed/delta?startDate=&endDate=``. Each answers a long-running operation
  ``{operationId, status: received|complete, checkStatusAfterSeconds, _links {status,
  result}}``; ``GET /long-operations/{id}/status`` until ``complete``, then
  ``GET /long-operations/{id}/result`` -> ``{data: [RO]}``. [S C4]: the first answer
  is HTTP 202, ``status`` may be ``error``, a result is kept 24 h, 429 is the rate
  limit, ``/open`` covers 31 days and a delta window 48 hours.
- [U]: the date format of ``startDate``/``endDate`` (ISO 8601 UTC with a Z is sent),
  paging of a result (none is followed), the meaning of status codes.

How Pitwall polls: the first read (and any read after a gap longer than
``delta_window_hours``) is ``/open``; after that each poll reads ``/open/delta`` and
then ``/closed/delta`` over [cursor - overlap, now], and marks the last page with
``now`` as its watermark. An operation in ``error``, one still running after
``max_status_polls``, or a result that expired twice is `DmsUnavailable`: the next
poll asks again. There is no by-number lookup in SRO v1 [V C1: none listed], so
``fetch_one`` answers None and closes come from ``/closed/delta``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsAuthError,
    DmsError,
    DmsPage,
    DmsUnavailable,
    LineStatus,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)
from integrations.dms.cdk import fields
from integrations.dms.http import DEFAULT_TIMEOUT, RetryPolicy, VendorHttp, brief
from integrations.dms.tokens import CachedToken

FORTELLIS_BASE_URL = "https://api.fortellis.io/cdk/drive/servicerepairorder/v1"
FORTELLIS_TOKEN_URL = "https://identity.fortellis.io/oauth2/aus1p1ixy7YL8cMq02p7/v1/token"
_DEFAULT_STATUS_WAIT = 5.0  # seconds, when checkStatusAfterSeconds is null


class CdkAdapter:
    """Reads one CDK dealer (one Fortellis subscription)."""

    kind = "cdk"
    snapshot = False

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        subscription_id: str,
        rooftop_slug: str,
        timezone: str,
        base_url: str = FORTELLIS_BASE_URL,
        token_url: str = FORTELLIS_TOKEN_URL,
        department_id: str | None = None,
        line_status_map: Mapping[str, LineStatus] | None = None,
        delta_window_hours: float = 47.0,
        max_wait_seconds: float = 60.0,
        max_status_polls: int = 40,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self._credentials = (client_id, client_secret)
        self.subscription_id = subscription_id
        self.department_id = department_id
        self.zone = ZoneInfo(timezone)
        self.line_status_map = dict(line_status_map or {})
        self.delta_window = timedelta(hours=delta_window_hours)
        self.max_wait_seconds = max_wait_seconds
        self.max_status_polls = max_status_polls
        self.clock = clock
        self.http = VendorHttp(
            kind=self.kind, rooftop_slug=rooftop_slug, retry=retry, timeout=timeout,
            transport=transport,
        )  # fmt: skip
        self.token = CachedToken(self._fetch_token, clock=clock)

    # -- authentication -------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, datetime]:
        now = self.clock()
        try:
            response = self.http.request(
                "POST",
                self.token_url,
                data={"grant_type": "client_credentials", "scope": "anonymous"},
                auth=self._credentials,
                headers=lambda: {"Accept": "application/json"},
            )
        except DmsError as exc:
            raise exc.doing("token request failed") from exc
        body = self._json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        lifetime = body.get("expires_in", 3600) if isinstance(body, dict) else None
        if not isinstance(token, str) or not isinstance(lifetime, int | float):
            raise self.http.error(DmsAuthError, "token endpoint answered without a token")
        return token, now + timedelta(seconds=lifetime)

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token.get()}",
            "Subscription-Id": self.subscription_id,
            "Request-Id": str(uuid.uuid4()),
            "Accept": "application/json",
        }
        if self.department_id:
            headers["Department-Id"] = self.department_id
        return headers

    def _get(self, url: str, **kwargs: Any) -> httpx.Response:
        cached = self.token.cached
        try:
            return self.http.request("GET", url, headers=self._headers, **kwargs)
        except DmsAuthError:
            if not cached:
                raise
            # A token can expire mid-poll or be revoked before expires_in: one fresh one.
            self.token.drop()
            return self.http.request("GET", url, headers=self._headers, **kwargs)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise self.http.error(DmsError, f"{response.url.path} answered invalid JSON") from exc

    # -- long-running operations ----------------------------------------------------

    def _start(self, path: str, params: Mapping[str, str]) -> tuple[dict[str, Any], str]:
        """Ask a query; its operation envelope and the URL it was asked at."""
        response = self._get(f"{self.base_url}{path}", params=dict(params), allow_status=(202,))
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("operationId"), str):
            raise self.http.error(
                DmsError, f"{path} answered without an operationId: {brief(response)}"
            )
        return body, str(response.url)

    def _link(self, operation: dict[str, Any], rel: str, where: str) -> str:
        links = operation.get("_links")
        href = None
        if isinstance(links, dict) and isinstance(links.get(rel), dict):
            href = links[rel].get("href")
        if not isinstance(href, str) or not href:
            href = f"{self.base_url}/long-operations/{operation['operationId']}/{rel}"
        return urljoin(where, href)

    def _await(self, operation: dict[str, Any], where: str) -> dict[str, Any]:
        """Poll the operation's status until ``complete``, honouring checkStatusAfterSeconds."""
        op_id = operation["operationId"]
        for _ in range(self.max_status_polls + 1):
            status = str(operation.get("status", "")).lower()
            if status == "complete":
                return operation
            if status == "error":
                raise self.http.error(DmsUnavailable, f"operation {op_id} ended in error")
            wait = operation.get("checkStatusAfterSeconds")
            if isinstance(wait, bool) or not isinstance(wait, int | float) or wait < 0:
                wait = _DEFAULT_STATUS_WAIT
            self.http.retry.sleep(min(float(wait), self.max_wait_seconds))
            url = self._link(operation, "status", where)
            answer = self._json(self._get(url))
            if not isinstance(answer, dict):
                raise self.http.error(DmsError, f"operation {op_id} status is not an object")
            operation = {**operation, **answer}
        raise self.http.error(
            DmsUnavailable, f"operation {op_id} not complete after {self.max_status_polls} polls"
        )

    def _query(self, path: str, params: Mapping[str, str]) -> list[Any]:
        """One query as a whole: start it, wait for it, read its ``data``."""
        for _ in range(2):  # a result that expired before we read it: ask once more
            operation, where = self._start(path, params)
            operation = self._await(operation, where)
            response = self._get(self._link(operation, "result", where), allow_status=(404, 410))
            if response.status_code in (404, 410):
                continue
            body = self._json(response)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise self.http.error(DmsError, f"{path} result has no 'data' list")
            return data
        raise self.http.error(DmsUnavailable, f"{path}: the operation's result expired twice")

    # -- the port -------------------------------------------------------------------

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """The open set (first read or after a long gap), else the open and closed deltas."""
        now = self.clock()
        if since is None or now - since > self.delta_window:
            records = self._query("/open", {})
            yield DmsPage(records=[fields.raw(item) for item in records], watermark=now)
            return
        # Whole seconds on the wire: the start rounded down, the end up, so nothing changed
        # within the second of either edge falls between two windows.
        end = now.replace(microsecond=0) + timedelta(seconds=1 if now.microsecond else 0)
        window = {"startDate": p.utc_z(since), "endDate": p.utc_z(end)}
        opened = self._query("/open/delta", window)
        yield DmsPage(records=[fields.raw(item) for item in opened])
        closed = self._query("/closed/delta", window)
        yield DmsPage(records=[fields.raw(item) for item in closed], watermark=now)

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """Service Repair Order v1 has no by-number lookup: None (closes come from deltas)."""
        return None

    def check(self) -> None:
        """A token, then one query (the last minute's open delta) answered with an operation."""
        self.token.drop()
        self.token.get()
        now = self.clock()
        window = {"startDate": p.utc_z(now - timedelta(minutes=1)), "endDate": p.utc_z(now)}
        try:
            self._start("/open/delta", window)
        except DmsError as exc:
            raise exc.doing(f"lookup GET {self.base_url}/open/delta failed") from exc

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one Fortellis repair order into Pitwall's type (raises MalformedRecord)."""
        return fields.normalise(
            record.payload, zone=self.zone, line_status_map=self.line_status_map
        )
