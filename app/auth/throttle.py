"""Login attempt limits per email + client IP.

Kept in the memory of the web process: enough to stop password guessing at one
server, and it needs no writes on every failed attempt. Several web processes
each keep their own count (an attacker gets at most N x MAX_FAILURES tries per
window); put the limit in the database or the proxy if that matters.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
_MAX_KEYS = 10_000  # bounded memory under a spray of random emails


class LoginThrottle:
    """Counts failed logins per (email, ip) in a sliding window."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: timedelta = WINDOW) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(email: str, ip: str) -> tuple[str, str]:
        return (email.strip().lower(), ip)

    def retry_after(self, email: str, ip: str, *, now: datetime) -> timedelta | None:
        """How long until this email+IP may try again, or None when it may try now."""
        with self._lock:
            failures = self._recent(self.key(email, ip), now)
            if len(failures) < self.max_failures:
                return None
            return failures[0] + self.window - now

    def record_failure(self, email: str, ip: str, *, now: datetime) -> None:
        with self._lock:
            if len(self._failures) >= _MAX_KEYS:
                self._failures.clear()
            key = self.key(email, ip)
            self._recent(key, now).append(now)

    def reset(self, email: str, ip: str) -> None:
        with self._lock:
            self._failures.pop(self.key(email, ip), None)

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return failures
