"""Rate limits for the customer's page: per link token and per client IP.

Counted in this process's memory, in fixed one-minute windows: the page has no login
and no session, and a database write on every view would turn a scraper into write
load. Several web processes each count their own share (the limits then scale with
them); the point is to make guessing tokens or hammering a link slow, not exact.
The client IP is the one app/guards.py settles (FORWARDED_ALLOW_IPS). Each app has its own
limiter (``app.state.customer_page_limiter``, made on first use).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

PER_TOKEN_PER_MINUTE = 60
PER_IP_PER_MINUTE = 120
# Tokens that lead nowhere: a guesser gets a handful, then waits.
UNKNOWN_PER_IP_PER_MINUTE = 10
_MAX_KEYS = 50_000


class Limiter:
    """Fixed-window counters; `allow` counts a hit and says whether it is within the limit."""

    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str, limit: int) -> bool:
        window = int(self._clock() // 60)  # type: ignore[operator]
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
            self._counts.move_to_end(key)
            while len(self._counts) > _MAX_KEYS:
                self._counts.popitem(last=False)
            return count <= limit

    def over(self, key: str, limit: int) -> bool:
        """True when `key` has already used up its limit this window (nothing counted)."""
        window = int(self._clock() // 60)  # type: ignore[operator]
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            return seen_window == window and count >= limit

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def allow_request(limiter: Limiter, *, ip: str, token: str) -> bool:
    """One page request: within both the IP's and the token's limits."""
    by_ip = limiter.allow(f"ip:{ip}", PER_IP_PER_MINUTE)
    by_token = limiter.allow(f"token:{token[:32]}", PER_TOKEN_PER_MINUTE)
    return by_ip and by_token and not limiter.over(f"unknown:{ip}", UNKNOWN_PER_IP_PER_MINUTE)


def count_unknown(limiter: Limiter, ip: str) -> None:
    """A token that led nowhere: counts toward the IP's guessing limit."""
    limiter.allow(f"unknown:{ip}", UNKNOWN_PER_IP_PER_MINUTE)
