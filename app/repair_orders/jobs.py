"""The DMS poll as a scheduled job: which rooftops are due, each on its own thread.

`DmsPollJob.tick()` is what the scheduler calls every few seconds: it starts a
poll for each due rooftop that is not already being polled by this process and
returns at once, so a DMS that takes a minute never delays another rooftop's
poll (nor the scheduler). `run_once()` is `pitwall worker --once`: poll every due
rooftop and wait. Across processes the lease in `poll_rooftop` decides.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from app.db import Database, utcnow
from app.dealers.models import Rooftop
from app.ops.logging import register_secrets
from app.repair_orders.changes import ChangeHook
from app.repair_orders.poller import (
    AdapterFactory,
    Clock,
    PollResult,
    due_rooftop_ids,
    poll_due_rooftops,
    poll_rooftop,
)
from integrations.dms.base import DmsAdapter
from integrations.dms.registry import CREDENTIAL_SETTINGS, build_adapter

log = logging.getLogger(__name__)


class AdapterCache:
    """An `AdapterFactory` that builds each rooftop's adapter once (through the registry)
    and keeps it while the rooftop's DMS settings stay the same.

    Adapters keep state worth keeping: an OAuth token, a pacing budget, the
    simulator's clock. A changed `[rooftop.dms]` table builds a fresh one.
    """

    def __init__(self, *, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._adapters: dict[int, tuple[str, DmsAdapter]] = {}

    def __call__(self, rooftop: Rooftop) -> DmsAdapter:
        dms = rooftop.settings.dms
        key = json.dumps([dms.kind, dms.adapter_settings(), rooftop.timezone], sort_keys=True)
        with self._lock:
            cached = self._adapters.get(rooftop.id)
            if cached is not None and cached[0] == key:
                return cached[1]
            settings = dms.adapter_settings()
            # Credentials from the dealer file are kept out of every log line from now on.
            register_secrets(
                value
                for name, value in settings.items()
                if name in CREDENTIAL_SETTINGS and isinstance(value, str)
            )
            adapter = build_adapter(
                dms.kind,
                settings,
                rooftop_slug=rooftop.slug,
                timezone=rooftop.timezone,
                clock=self._clock,
            )
            self._adapters[rooftop.id] = (key, adapter)
        if cached is not None:
            cached[1].close()
        return adapter

    def close(self) -> None:
        """Close every adapter (worker shutdown)."""
        with self._lock:
            adapters, self._adapters = list(self._adapters.values()), {}
        for _, adapter in adapters:
            adapter.close()


class DmsPollJob:
    """Polls due rooftops without ever letting one slow DMS hold up another."""

    def __init__(
        self,
        database: Database,
        *,
        adapter_factory: AdapterFactory,
        hooks: Sequence[ChangeHook],
        worker_id: str,
        clock: Clock = utcnow,
        max_workers: int = 4,
    ) -> None:
        self.database, self.adapter_factory, self.hooks = database, adapter_factory, hooks
        self.worker_id, self.clock, self.max_workers = worker_id, clock, max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dms-poll")
        self._running: dict[int, Future[PollResult]] = {}
        self._lock = threading.Lock()

    def tick(self) -> list[int]:
        """Start a poll for each due rooftop not already in flight here; returns their ids."""
        with self.database.transaction() as session:
            due = due_rooftop_ids(session, now=self.clock())
        started = []
        with self._lock:
            self._running = {k: f for k, f in self._running.items() if not f.done()}
            for rooftop_id in due:
                if rooftop_id in self._running:
                    continue
                self._running[rooftop_id] = self._pool.submit(
                    poll_rooftop,
                    self.database,
                    rooftop_id=rooftop_id,
                    adapter_factory=self.adapter_factory,
                    hooks=self.hooks,
                    clock=self.clock,
                    worker_id=self.worker_id,
                )
                started.append(rooftop_id)
        return started

    def run_once(self) -> list[PollResult]:
        """Poll every due rooftop now and wait for all (`pitwall worker --once`)."""
        return poll_due_rooftops(
            self.database,
            adapter_factory=self.adapter_factory,
            hooks=self.hooks,
            clock=self.clock,
            worker_id=self.worker_id,
            max_workers=self.max_workers,
        )

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop taking new polls; by default let the running ones finish."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
