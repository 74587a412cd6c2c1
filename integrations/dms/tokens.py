"""An OAuth-style bearer token kept until shortly before it expires (Fortellis, Tekion)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta


class CachedToken:
    """Calls ``fetch`` for a token and keeps it until ``margin`` before it expires.

    ``fetch`` returns the token and its expiry. The margin is at most a tenth of the
    token's life, so a short-lived test token is still used more than once. ``drop``
    forgets it (the vendor refused it early: revoked, or its clock disagrees with ours).
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, datetime]],
        *,
        clock: Callable[[], datetime],
        margin: timedelta = timedelta(minutes=5),
    ) -> None:
        self._fetch, self._clock, self._margin = fetch, clock, margin
        self._token: str | None = None
        self._renew_at: datetime | None = None
        self._lock = threading.Lock()
        self.issued = 0

    def get(self) -> str:
        """A token believed valid now, fetching a fresh one when needed."""
        with self._lock:
            now = self._clock()
            if self._token is None or self._renew_at is None or now >= self._renew_at:
                token, expires_at = self._fetch()
                life = max(timedelta(0), expires_at - now)
                self._token, self._renew_at = token, expires_at - min(self._margin, life / 10)
                self.issued += 1
            return self._token

    @property
    def cached(self) -> bool:
        """True when a token is held (so a refusal may be a stale token, worth one retry)."""
        return self._token is not None

    def drop(self) -> None:
        """Forget the token; the next ``get`` fetches a new one."""
        with self._lock:
            self._token, self._renew_at = None, None
