"""Calls to Tekion's APC API v4.0.0. Second-hand [S] throughout; see facts/dms.md §3.

- Token [V T1, T2 code]: ``POST {base}/public/tokens`` form ``app_id``, ``secret_key`` ->
  ``{status, data {token_type, access_token, expire_in, expire_on (epoch s), issued_at}}``.
  Kept until 5 minutes before ``expire_on``; refreshed once on a 401. About 24 h of life
  and 20 tokens per 15 minutes [S T2 design notes]: more than 18 asked in 15 minutes
  is refused here, rather than by Tekion.
- Every call [V T1, T2]: ``Authorization: Bearer``, ``app_id``, ``dealer_id``.
- Base [V T1, T2]: ``https://api.tekioncloud.com/openapi`` (sandbox
  ``https://api-sandbox.tekioncloud.com/openapi``).
- Repair orders [S T2 client, T4]: ``POST /v4.0.0/repair-orders:search`` with
  ``{pageSize, filters [{field, operator, values}], paginationToken?}``; the answer's
  ``data.results`` (or ``data`` as a list, as in T2's mocks) and ``meta.nextPageToken``.
  ``pageSize`` is capped at 20 and a page token can wander outside the time filter
  [S T4]: a page holding records outside the window abandons its token, and the rest of
  the window is read again in two halves (the content hash makes the re-read free).
  Each RO's jobs (``GET /v4.0.0/repair-orders/{documentId}/jobs``) and customer
  (``/ro-customers/{primaryCustomer.id}``) are read with it [S T2].
- 429 ``OVERALL_QUOTA`` [S T4] is retried honouring Retry-After, and every attempt is
  paced by a token bucket (``calls_per_15_minutes``; Tekion's numbers are unpublished).

The first read covers the last 30 days of ``modifiedTime``; later ones [cursor -
overlap, now], the last page carrying ``now`` as its watermark.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx

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
from integrations.dms.http import DEFAULT_TIMEOUT, RetryPolicy, VendorHttp
from integrations.dms.pacing import TokenBucket
from integrations.dms.tekion import fields
from integrations.dms.tokens import CachedToken

TEKION_BASE_URL = "https://api.tekioncloud.com/openapi"
PAGE_SIZE = 20
TOKENS_PER_15_MINUTES = 18  # Tekion allows 20 [S]; two kept in hand
FIRST_READ = timedelta(days=30)
MAX_SPLITS = 4


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class TekionAdapter:
    """Reads one Tekion dealer."""

    kind = "tekion"
    snapshot = False

    def __init__(
        self,
        *,
        app_id: str,
        secret_key: str,
        dealer_id: str,
        rooftop_slug: str,
        timezone: str = "UTC",  # unused: Tekion's times are epoch milliseconds, UTC by nature
        base_url: str = TEKION_BASE_URL,
        line_status_map: Mapping[str, LineStatus] | None = None,
        calls_per_15_minutes: int = 1500,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        pacer: TokenBucket | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._app_id, self._secret_key = app_id, secret_key
        self.dealer_id = dealer_id
        self.line_status_map = dict(line_status_map or {})
        self.page_size = min(page_size, PAGE_SIZE)
        self.clock = clock
        self.http = VendorHttp(
            kind=self.kind, rooftop_slug=rooftop_slug, retry=retry, timeout=timeout,
            transport=transport,
        )  # fmt: skip
        self.pacer = pacer or TokenBucket(
            calls=calls_per_15_minutes,
            per_seconds=900,
            burst=max(1, min(50, calls_per_15_minutes // 2)),
            clock=time.monotonic,
            sleep=self.http.retry.sleep,
        )
        self.token = CachedToken(self._fetch_token, clock=clock)
        self._tokens_asked: collections.deque[datetime] = collections.deque()

    # -- authentication -------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, datetime]:
        now = self.clock()
        while self._tokens_asked and now - self._tokens_asked[0] > timedelta(minutes=15):
            self._tokens_asked.popleft()
        if len(self._tokens_asked) >= TOKENS_PER_15_MINUTES:
            raise self.http.error(
                DmsUnavailable,
                f"{TOKENS_PER_15_MINUTES} tokens asked in 15 minutes; waiting before another",
            )
        self._tokens_asked.append(now)
        try:
            response = self.http.request(
                "POST",
                f"{self.base_url}/public/tokens",
                data={"app_id": self._app_id, "secret_key": self._secret_key},
                headers=lambda: {"Accept": "application/json"},
            )
        except DmsError as exc:
            raise exc.doing("token request failed") from exc
        body = self._json(response, "token")
        data = body.get("data") if isinstance(body, dict) else None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise self.http.error(DmsAuthError, "token endpoint answered without an access_token")
        assert isinstance(data, dict)
        expire_on, expire_in = data.get("expire_on"), data.get("expire_in")
        if isinstance(expire_on, int) and not isinstance(expire_on, bool):
            expires = datetime.fromtimestamp(expire_on, now.tzinfo)
        elif isinstance(expire_in, int | float) and not isinstance(expire_in, bool):
            expires = now + timedelta(seconds=expire_in)
        else:
            expires = now + timedelta(hours=1)
        return token, expires

    def _headers(self) -> dict[str, str]:
        self.pacer.acquire()  # per attempt: retries spend the same budget as first tries
        return {
            "Authorization": f"Bearer {self.token.get()}",
            "app_id": self._app_id,
            "dealer_id": self.dealer_id,
            "Accept": "application/json",
        }

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        cached = self.token.cached
        url = f"{self.base_url}{path}"
        try:
            return self.http.request(method, url, headers=self._headers, **kwargs)
        except DmsAuthError:
            if not cached:
                raise
            self.token.drop()  # expired or revoked before expire_on: one fresh token
            return self.http.request(method, url, headers=self._headers, **kwargs)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise self.http.error(DmsError, f"{what} answered invalid JSON") from exc

    # -- search ---------------------------------------------------------------------

    def _search(self, filters: list[dict[str, Any]], token: str | None, size: int) -> Any:
        body: dict[str, Any] = {"pageSize": size, "filters": filters}
        if token:
            body["paginationToken"] = token
        answer = self._json(self._call("POST", "/v4.0.0/repair-orders:search", json=body), "search")
        data = answer.get("data") if isinstance(answer, dict) else None
        results = data.get("results") if isinstance(data, dict) else data
        if not isinstance(results, list):
            raise self.http.error(DmsError, "search answer has no data.results list")
        meta = answer.get("meta") if isinstance(answer.get("meta"), dict) else {}
        return results, (meta or {}).get("nextPageToken")

    def _window(self, start: int, end: int, depth: int = 0) -> Iterator[list[Any]]:
        """Search results modified in [start, end] (epoch ms), page by page."""
        filters = [
            {"field": "modifiedTime", "operator": "GTE", "values": [start]},
            {"field": "modifiedTime", "operator": "LTE", "values": [end]},
        ]
        token: str | None = None
        while True:
            results, token = self._search(filters, token, self.page_size)
            inside = [r for r in results if not _outside(r, start, end)]
            yield inside
            if len(inside) < len(results) and depth < MAX_SPLITS and end - start > 1000:
                # The token wandered out of the window: read what is left in two halves.
                middle = (start + end) // 2
                yield from self._window(start, middle, depth + 1)
                yield from self._window(middle + 1, end, depth + 1)
                return
            if not token:
                return

    def _enrich(self, record: Any) -> RawRecord:
        if not isinstance(record, dict) or not isinstance(record.get("documentId"), str):
            return fields.raw(record)  # quarantined as it came
        ro_id = record["documentId"]
        jobs = self._json(
            self._call("GET", f"/v4.0.0/repair-orders/{ro_id}/jobs", allow_status=(404,)), "jobs"
        )
        enriched = dict(record)
        job_list = jobs.get("data") if isinstance(jobs, dict) else None
        if isinstance(job_list, dict):
            job_list = job_list.get("results")
        enriched["jobs"] = job_list if isinstance(job_list, list) else []
        primary = record.get("primaryCustomer")
        customer_id = primary.get("id") if isinstance(primary, dict) else None
        if isinstance(customer_id, str) and customer_id:
            answer = self._call(
                "GET",
                f"/v4.0.0/repair-orders/{ro_id}/ro-customers/{customer_id}",
                allow_status=(404,),
            )
            customer = self._json(answer, "ro-customers") if answer.status_code == 200 else {}
            if isinstance(customer, dict) and isinstance(customer.get("data"), dict):
                enriched["customer"] = customer["data"]
        return fields.raw(enriched)

    # -- the port -------------------------------------------------------------------

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """ROs modified in [since, now] (the last 30 days when None), 20 to a page."""
        now = self.clock()
        start = since if since is not None else now - FIRST_READ
        pages = self._window(_ms(start), _ms(now))
        page = next(pages, None)
        while page is not None:
            following = next(pages, None)
            yield DmsPage(
                records=[self._enrich(item) for item in page],
                watermark=now if following is None else None,
            )
            page = following

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """Search by RO number (``documentNumber``); None when Tekion has no such RO."""
        filters = [{"field": "documentNumber", "operator": "IN", "values": [ro_number]}]
        results, _ = self._search(filters, None, 1)
        return self._enrich(results[0]) if results else None

    def check(self) -> None:
        """A token, then one search (ROs modified in the last minute)."""
        self.token.drop()
        self.token.get()
        now = _ms(self.clock())
        filters = [{"field": "modifiedTime", "operator": "GTE", "values": [now - 60_000]}]
        try:
            self._search(filters, None, 1)
        except DmsError as exc:
            raise exc.doing(
                f"search POST {self.base_url}/v4.0.0/repair-orders:search failed"
            ) from exc

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one enriched Tekion RO into Pitwall's type (raises MalformedRecord)."""
        return fields.normalise(record.payload, line_status_map=self.line_status_map)


def _outside(record: Any, start: int, end: int) -> bool:
    modified = record.get("modifiedTime") if isinstance(record, dict) else None
    return isinstance(modified, int) and not start <= modified <= end
