"""The HTTP client under Pitwall's Twilio gateway: one `requests.Session` per thread.

A ``twilio`` HttpClient (the library's calls go through it) and the gateway's own
create call alike: no client-side retries (the outbox retries and reconciles), a
timeout on every call, each request's head prepared once per shape, and the last
response's headers kept per thread so ``Retry-After`` survives into a SendError.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3 import HTTPConnectionPool

__all__ = ["ThreadLocalHttpClient", "form_encode", "prepare_request"]

logger = logging.getLogger(__name__)


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
