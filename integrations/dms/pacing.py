"""Client-side pacing: a token bucket that keeps an adapter under a vendor's call budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Allow at most ``calls`` per ``per_seconds`` in any window, with a small burst.

    The refill rate is ``(calls - burst) / per_seconds``: a full burst plus a
    window of refills then adds up to exactly ``calls``, so even a sliding
    window never exceeds the vendor's budget. ``clock`` and ``sleep`` are
    injectable so tests need no real waiting.
    """

    def __init__(
        self,
        *,
        calls: int,
        per_seconds: float,
        burst: int = 50,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < burst < calls:
            raise ValueError("burst must be between 1 and calls - 1")
        self.capacity = float(burst)
        self.rate = (calls - burst) / per_seconds
        self.clock, self.sleep = clock, sleep
        self.tokens = self.capacity
        self.updated = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self) -> float:
        """Take one call's worth, sleeping until it is available; return the seconds waited."""
        with self._lock:
            self._refill()
            waited = 0.0
            if self.tokens < 1:
                waited = (1 - self.tokens) / self.rate
                self.sleep(waited)
                self._refill()
                # A fake or coarse clock may not have moved the whole way; we did wait.
                self.tokens = max(self.tokens, 1.0)
            self.tokens -= 1
            return waited
