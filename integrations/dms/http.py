"""HTTP plumbing shared by the vendor adapters: timeouts, bounded retries, clear errors.

Retries here are seconds long (connection errors, 5xx, 429 honouring
Retry-After). Anything longer is the poller's business: the next poll.
401/403 are never retried: wrong credentials do not heal themselves.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from integrations.dms.base import DmsAuthError, DmsError, DmsUnavailable

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_SOAP_FAULT = re.compile(
    r"<faultcode>(?P<code>[^<]*)</faultcode>\s*<faultstring>(?P<reason>[^<]*)</faultstring>"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard an adapter tries before giving up on this poll.

    ``sleep`` is injectable so tests run retries without waiting.
    """

    attempts: int = 4
    budget_seconds: float = 10.0
    base_wait: float = 0.5
    max_wait: float = 4.0
    sleep: Callable[[float], None] = field(default=time.sleep)


class RetryableResponse(Exception):
    """A response worth trying again (5xx, 429); carries the server's Retry-After."""

    def __init__(self, response: httpx.Response, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Read Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def brief(response: httpx.Response, limit: int = 120) -> str:
    """A short, single-line description of a failed response: "401 invalid_client"."""
    body = " ".join(response.text.split())[:limit]
    try:
        data = response.json()
    except ValueError:
        data = None
    fault = _SOAP_FAULT.search(response.text)
    if fault is not None:  # a SOAP fault: its code and reason, not the envelope
        return f"{response.status_code} {fault['code']} {fault['reason'].strip()}"[:200]
    # OAuth2 and most JSON APIs put the useful word in "error"; show that, not the JSON.
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        body = data["error"]
        if isinstance(data.get("error_description"), str):
            body += f" ({data['error_description']})"
    return f"{response.status_code} {body}".strip()


class VendorHttp:
    """An httpx client bound to one rooftop's DMS, with retries and error mapping."""

    def __init__(
        self,
        *,
        kind: str,
        rooftop_slug: str,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.kind = kind
        self.rooftop_slug = rooftop_slug
        self.retry = retry or RetryPolicy()
        self.client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def error(self, cls: type[DmsError], detail: str) -> DmsError:
        """Build a DmsError (or subclass) naming this rooftop and DMS kind."""
        return cls(detail, rooftop_slug=self.rooftop_slug, kind=self.kind)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Callable[[], dict[str, str]] | None = None,
        inspect: Callable[[httpx.Response], None] | None = None,
        allow_status: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with bounded retries; return a 2xx response or raise DmsError.

        ``headers`` is called per attempt (fresh Request-Id, current token).
        ``inspect`` may raise RetryableResponse or DmsError for vendors that
        report faults inside a 200 or 500 body (SOAP). Statuses in
        ``allow_status`` (e.g. 404 on a lookup) are returned, not raised.
        """
        policy = self.retry
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type((httpx.TransportError, RetryableResponse)),
            sleep=policy.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.client.request(
                        method, url, headers=headers() if headers else None, **kwargs
                    )
                    return self._classify(response, inspect, allow_status)
        except httpx.TimeoutException as exc:
            raise self.error(DmsUnavailable, f"timed out calling {url}: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise self.error(DmsUnavailable, f"cannot reach {url}: {exc}") from exc
        except RetryableResponse as exc:
            hint = f" (Retry-After {exc.retry_after:g}s)" if exc.retry_after is not None else ""
            raise self.error(
                DmsUnavailable, f"gave up retrying: {brief(exc.response)}{hint}"
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _classify(
        self,
        response: httpx.Response,
        inspect: Callable[[httpx.Response], None] | None,
        allow_status: tuple[int, ...],
    ) -> httpx.Response:
        if inspect is not None:
            inspect(response)
        status = response.status_code
        if status in allow_status:
            return response
        if status in (401, 403):
            raise self.error(DmsAuthError, f"authentication failed: {brief(response)}")
        if status == 429 or status >= 500:
            raise RetryableResponse(response, retry_after_seconds(response))
        if status >= 400:
            where = f"{response.request.method} {response.url.path}"
            raise self.error(DmsError, f"{where} refused: {brief(response)}")
        return response

    def _stop(self, state: RetryCallState) -> bool:
        # Budget counts the waits we asked for (idle_for), not wall time, so a
        # Retry-After beyond the budget fails now instead of hanging the poll.
        policy = self.retry
        if state.attempt_number >= policy.attempts:
            return True
        return state.idle_for + self._wait(state) > policy.budget_seconds

    def _wait(self, state: RetryCallState) -> float:
        policy = self.retry
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableResponse) and exc.retry_after is not None:
            # The server said when; going earlier only earns another 429.
            return exc.retry_after
        return min(policy.max_wait, policy.base_wait * 2 ** (state.attempt_number - 1))

    def close(self) -> None:
        """Close the underlying connection pool."""
        self.client.close()
