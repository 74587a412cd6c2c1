"""Twilio adapter for :class:`~integrations.twilio.base.MessageGateway`.

Uses the official ``twilio`` client, pointed at ``api_url`` (Twilio itself or the
local sandbox). Requests go through :class:`ThreadLocalHttpClient`: one
``requests.Session`` per thread, no client-side retries (the outbox retries and
reconciles), a timeout on every call, and the last response's headers kept per
thread so ``Retry-After`` survives into :class:`SendError`.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import NewConnectionError

from integrations.twilio.base import (
    CLOCK_SKEW_MARGIN_SECONDS,
    ErrorKind,
    OutgoingMessage,
    SendError,
    SentMessage,
)

__all__ = ["ThreadLocalHttpClient", "TwilioGateway", "form_encode", "prepare_request"]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
_LIST_PAGE_SIZE = 50


class ThreadLocalHttpClient(HttpClient):
    """A ``twilio`` HttpClient that is safe to share between threads.

    ``requests.Session`` is not documented as thread-safe, so each thread gets its
    own (with its own keep-alive pool); the dispatcher's thread pool therefore
    reuses connections without contending on a shared pool.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        super().__init__(logger, is_async=False, timeout=timeout)
        self._local = threading.local()
        # Weak: a session dies with its thread instead of piling up in pool churn.
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._sessions_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # max_retries=0: a silent retry of a POST could create a second message.
            adapter = _OneHostAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.add(session)
        return session

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request; raises ``requests`` exceptions on network failure.

        The prepared request goes straight to the thread's transport adapter: what
        ``Session.send`` adds around it (a cookie jar Twilio's API never uses, hooks,
        redirects, never followed here) cost a fifth of a send's CPU. The request line
        and headers are prepared by ``requests`` once per shape (:func:`prepare_request`).
        The environment's settings for a host (proxies, CA bundle:
        ``merge_environment_settings``) are still honoured, worked out once per thread
        and host.
        """
        self._local.last_headers = {}
        effective_timeout = timeout if timeout is not None else self.timeout
        session = self._session()
        headers = dict(headers or {})
        body: bytes | None = None
        if data:
            body = form_encode(data)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        query = form_encode(params).decode() if params else None
        if allow_redirects:  # not asked by any call Pitwall makes; the session follows them
            prepared = requests.Request(
                method.upper(), uri, params=query, data=body, headers=headers, auth=auth
            ).prepare()
            environment = self._environment(session, prepared.url or uri)
            response = session.send(
                prepared, timeout=effective_timeout, allow_redirects=True, **environment
            )
        else:
            prepared = prepare_request(
                method, uri, query=query, body=body, headers=headers, auth=auth
            )
            url = prepared.url or uri
            environment = self._environment(session, url)
            response = session.get_adapter(url).send(
                prepared, timeout=effective_timeout, **environment
            )
        self._local.last_headers = response.headers
        return Response(int(response.status_code), response.text, response.headers)

    def _environment(self, session: requests.Session, url: str) -> dict[str, Any]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        cache: dict[str, dict[str, Any]] = self._local.__dict__.setdefault("environment", {})
        if origin not in cache:
            settings = session.merge_environment_settings(origin, {}, None, None, None)
            cache[origin] = {key: settings[key] for key in ("proxies", "verify", "cert")}
        return cache[origin]

    def last_headers(self) -> Mapping[str, str]:
        """Headers of the last response received on the calling thread (case-insensitive)."""
        headers: Mapping[str, str] = getattr(self._local, "last_headers", {})
        return headers

    def close(self) -> None:
        """Close every thread's session (idle connections are dropped)."""
        with self._sessions_lock:
            sessions = list(self._sessions)
            self._sessions.clear()
        for session in sessions:
            session.close()


class _OneHostAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that finds a host's connection pool and checks its TLS settings once.

    ``requests`` redoes both for every request: the URL parsed again, the pool key
    built, and with a CA bundle path (``REQUESTS_CA_BUNDLE``) that path stat-ed in each,
    a system call that on a busy send thread is one more GIL hand-off. A gateway talks
    to one API host with settings fixed per thread, so the pool found first is kept
    while it stays open (a closed pool, e.g. after ``close()``, is looked up again).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pools: dict[tuple[object, ...], HTTPConnectionPool] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        proxies: dict[str, str] | None = None,
        cert: str | tuple[str, str] | None = None,
    ) -> HTTPConnectionPool:
        parts = urlsplit(request.url or "")
        proxy = tuple(sorted(proxies.items())) if proxies else ()
        key = (parts.scheme.lower(), parts.netloc.lower(), verify, cert, proxy)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            super().cert_verify(pool, request.url or "", verify, cert)
            self._pools[key] = pool
        return pool

    def cert_verify(
        self,
        conn: HTTPConnectionPool,
        url: str,
        verify: bool | str,
        cert: str | tuple[str, str] | None,
    ) -> None:
        """Done once per pool, when ``get_connection_with_tls_context`` first finds it."""

    def close(self) -> None:
        self._pools.clear()
        super().close()


def prepare_request(
    method: str,
    uri: str,
    *,
    query: str | None,
    body: bytes | None,
    headers: Mapping[str, str],
    auth: tuple[str, str] | None,
) -> requests.PreparedRequest:
    """The request ``requests.Request(...).prepare()`` would build, at a fraction of its cost.

    ``requests`` prepares the URL (parsed, IDNA-checked, requoted), the headers, the
    basic auth header and an empty cookie jar on every call: a sixth of a send's CPU.
    Here that is done once per method, URI, headers and credentials
    (:func:`_prepared_head`); a call adds its query string (already form-encoded, so
    requoting leaves it as it is) and its body with its ``Content-Length``.
    """
    head = _prepared_head(method.upper(), uri, tuple(headers.items()), auth)
    prepared = requests.PreparedRequest()
    prepared.method = head.method
    prepared.url = head.url
    if query:
        prepared.url = f"{head.url}{'&' if '?' in (head.url or '') else '?'}{query}"
    prepared.headers = head.headers.copy()
    if body is not None:
        prepared.body = body
        prepared.headers["Content-Length"] = str(len(body))
    return prepared


@functools.lru_cache(maxsize=64)
def _prepared_head(
    method: str, uri: str, headers: tuple[tuple[str, str], ...], auth: tuple[str, str] | None
) -> requests.PreparedRequest:
    """``requests``' own preparation of a bodiless request; callers copy, never change it."""
    return requests.Request(method, uri, headers=dict(headers), auth=auth).prepare()


def form_encode(fields: Mapping[str, object]) -> bytes:
    """A form body (or query string) as ``requests`` would encode ``fields``.

    Done here, once, because ``requests`` checks a dict against its runtime
    ``SupportsRead`` protocol on every request (tens of microseconds a send). A list
    value repeats its key (Twilio's ``MediaUrl``); ``None`` values are left out.
    """
    pairs: list[tuple[str, object]] = []
    for key, value in fields.items():
        items = value if isinstance(value, list | tuple) else (value,)
        pairs.extend((key, item) for item in items if item is not None)
    return urlencode(pairs).encode("ascii")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _network_error(exc: requests.RequestException) -> SendError:
    """Classify a network failure by whether the request can have reached Twilio."""
    if isinstance(exc, requests.ConnectTimeout):
        return SendError(f"connect timeout: {exc}", kind=ErrorKind.TRANSIENT)
    if isinstance(exc, requests.ConnectionError):
        cause: BaseException | None = exc.args[0] if exc.args else None
        reason = getattr(cause, "reason", cause)
        # Refused / DNS failure: no connection, so no request body left this host.
        if isinstance(reason, NewConnectionError):
            return SendError(f"could not connect: {reason}", kind=ErrorKind.TRANSIENT)
        return SendError(f"connection lost, outcome unknown: {exc}", kind=ErrorKind.AMBIGUOUS)
    return SendError(f"no answer, outcome unknown: {exc}", kind=ErrorKind.AMBIGUOUS)


def _to_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unset(value: Any) -> Any:
    """``values.unset`` for None, so the client leaves the parameter out."""
    return values.unset if value is None else value


def _sent(instance: Any) -> SentMessage:
    created = instance.date_created if isinstance(instance.date_created, datetime) else None
    return SentMessage(
        sid=str(instance.sid),
        status=str(instance.status or ""),
        num_segments=_to_int(instance.num_segments),
        date_created=created,
    )


class TwilioGateway:
    """Sends and looks up messages through Twilio's REST API. Thread-safe."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 10.0,
    ) -> None:
        self._account_sid = account_sid
        self._http = ThreadLocalHttpClient(timeout=timeout)
        client = Client(account_sid, auth_token, http_client=self._http)
        # TWILIO_EDGE/TWILIO_REGION from the environment would rewrite the host
        # (api.edge.region.twilio.com) and bypass api_url; Pitwall's setting decides.
        client.edge = None
        client.region = None
        # Every v2010 resource (including next_page_uri paging) is resolved against
        # this Domain's base_url, so one assignment routes all calls.
        client.api.base_url = api_url.rstrip("/")
        self._client = client
        # Build the lazy resource objects once, before threads race to create them.
        self._account = client.api.v2010.accounts(account_sid)
        self._messages = self._account.messages

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def _rest_error(self, exc: TwilioException, action: str) -> SendError:
        status = _to_int(getattr(exc, "status", None))
        code = _to_int(getattr(exc, "code", None))
        if code is not None and code == status:
            # twilio-python puts the HTTP status in `code` when the body has none.
            code = None
        retry_after = parse_retry_after(self._http.last_headers().get("Retry-After"))
        detail = getattr(exc, "msg", None) or str(exc)
        return SendError.from_code(
            f"twilio {action} failed: {detail}",
            code=code,
            http_status=status,
            retry_after=retry_after,
        )

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwilioRestException as exc:
            raise self._rest_error(exc, action) from exc
        except requests.RequestException as exc:
            raise _network_error(exc) from exc
        except TwilioException as exc:
            # RFC 9457 service errors and other library errors carry status/code too.
            raise self._rest_error(exc, action) from exc
        except ValueError as exc:
            # An unreadable 2xx body: Twilio may well have created the message.
            raise SendError(
                f"twilio {action}: unreadable response: {exc}", kind=ErrorKind.AMBIGUOUS
            ) from exc

    def send(self, msg: OutgoingMessage) -> SentMessage:
        """Create the message; raise :class:`SendError` with a classified ``kind``."""

        variables = (
            json.dumps(msg.content_variables, separators=(",", ":"))
            if msg.content_variables is not None
            else None
        )
        instance = self._call(
            "send",
            self._messages.create,
            to=msg.to,
            from_=_unset(msg.from_),
            messaging_service_sid=_unset(msg.messaging_service_sid),
            body=_unset(msg.body),
            content_sid=_unset(msg.content_sid),
            content_variables=_unset(variables),
            status_callback=_unset(msg.status_callback),
            validity_period=_unset(msg.validity_period),
        )
        return _sent(instance)

    def find_existing(
        self,
        *,
        to: str,
        from_: str | None,
        messaging_service_sid: str | None,
        body: str | None,
        content_sid: str | None,
        created_after: datetime,
    ) -> SentMessage | None:
        """Return the newest message an earlier ambiguous attempt created, if any.

        Twilio's list has no content SID, so a template send (no body) matches any
        message to the same recipient (and sender / service) inside the window.
        """
        if created_after.tzinfo is None:
            created_after = created_after.replace(tzinfo=UTC)
        since = created_after - timedelta(seconds=CLOCK_SKEW_MARGIN_SECONDS)
        # With a Messaging Service Twilio picks the sender, so From is unknown.
        list_from = from_ if messaging_service_sid is None else None
        instances = self._call(
            "list",
            self._messages.list,
            to=to,
            from_=_unset(list_from),
            limit=_LIST_PAGE_SIZE,
            page_size=_LIST_PAGE_SIZE,
        )
        best: SentMessage | None = None
        for instance in instances:
            created = instance.date_created
            if not isinstance(created, datetime) or created < since:
                continue
            if messaging_service_sid and instance.messaging_service_sid not in (
                None,
                messaging_service_sid,
            ):
                continue
            if body is not None and instance.body != body:
                continue
            if body is None and content_sid is None:
                continue
            candidate = _sent(instance)
            if best is None or (created > (best.date_created or created)):
                best = candidate
        return best

    def fetch(self, sid: str) -> SentMessage:
        """Fetch one message by SID."""
        return _sent(self._call("fetch", self._messages(sid).fetch))

    def check_credentials(self) -> str:
        """Fetch the account; return its friendly name or raise SendError (AUTH on 401)."""
        account = self._call("account check", self._account.fetch)
        return str(account.friendly_name or self._account_sid)
