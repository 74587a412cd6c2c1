"""The worker: what `pitwall worker` runs on a schedule and `--once` runs one time.

A run is: poll every rooftop's DMS (which plans status texts in the same
transactions), queue due follow-ups and watchdog messages, then send everything
that is due. Each step is its own unit of work; many workers may run at once on
PostgreSQL because every step claims its rows (leases, SKIP LOCKED, dedupe keys).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from app.config import Settings
from app.db import Database, utcnow
from app.followups.jobs import run_followups, run_watchdog
from app.messaging.dispatcher import DispatchResult, dispatch_due
from app.messaging.jobs import apply_held_statuses, refresh_unconfirmed, send_due_messages
from app.repair_orders.changes import ChangeHook
from app.repair_orders.jobs import DmsPollJob
from app.repair_orders.poller import AdapterFactory, PollResult, poll_due_rooftops
from integrations.twilio.base import MessageGateway

Clock = Callable[[], datetime]
_DISPATCH_COUNTS = ("sent", "adopted", "deferred", "suppressed", "expired", "retried", "failed")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunReport:
    """What one run did, for the operator's terminal and for tests."""

    polls: list[PollResult] = field(default_factory=list)
    followups_queued: int = 0
    watchdog_actions: int = 0
    dispatch: DispatchResult = field(default_factory=DispatchResult)

    def summary(self) -> str:
        polled = (
            "; ".join(
                f"rooftop {p.rooftop_id} {p.outcome}"
                + (f" ({p.error})" if p.error else "")
                + "".join(f", {n} {k}" for k, n in sorted(p.counts.items()) if n)
                for p in self.polls
            )
            or "no rooftops"
        )
        sent = ", ".join(
            f"{getattr(self.dispatch, name)} {name}"
            for name in _DISPATCH_COUNTS
            if getattr(self.dispatch, name)
        )
        return (
            f"polled: {polled}\n"
            f"follow-ups queued: {self.followups_queued}; "
            f"watchdog actions: {self.watchdog_actions}\n"
            f"messages: {sent or 'nothing due'}"
            + (f" (sending stopped: {self.dispatch.stopped})" if self.dispatch.stopped else "")
        )


class Worker:
    """Holds what a worker keeps between ticks: the gateway, DMS adapters, its id."""

    def __init__(
        self,
        database: Database,
        *,
        public_url: str,
        gateway: MessageGateway,
        adapters: AdapterFactory,
        hooks: list[ChangeHook],
        clock: Clock = utcnow,
        worker_id: str | None = None,
        send_concurrency: int = 32,
    ) -> None:
        self.database = database
        self.public_url = public_url
        self.gateway = gateway
        self.adapters = adapters
        self.hooks = hooks
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self.send_concurrency = send_concurrency
        self.polls = DmsPollJob(
            database, adapter_factory=adapters, hooks=hooks, worker_id=self.worker_id, clock=clock
        )

    @classmethod
    def from_settings(cls, settings: Settings, database: Database) -> Worker:
        from app.customer_page.links import use_public_url
        from app.repair_orders.jobs import AdapterCache
        from app.wiring import build_gateway, change_hooks

        use_public_url(settings.public_url)  # the links in the texts it sends

        return cls(
            database,
            public_url=settings.public_url,
            gateway=build_gateway(settings),
            adapters=AdapterCache(),
            hooks=change_hooks(),
        )

    def poll_tick(self) -> None:
        """Start polls of the rooftops now due, each on its own thread; return at once."""
        self.polls.tick()

    def poll_every_rooftop(self) -> list[PollResult]:
        """Poll every active rooftop now, whatever its interval, and wait (`worker --once`)."""
        from app.dealers.service import active_rooftops

        with self.database.transaction() as session:
            rooftop_ids = [r.id for r in active_rooftops(session)]
        return poll_due_rooftops(
            self.database,
            adapter_factory=self.adapters,
            hooks=self.hooks,
            clock=self.clock,
            worker_id=self.worker_id,
            rooftop_ids=rooftop_ids,
        )

    def dispatch(self) -> DispatchResult:
        """One claim-and-send round of what is due now."""
        return dispatch_due(self.database, **self._sending())

    def dispatch_until_idle(self) -> DispatchResult:
        """Claim and send, batch after batch, until nothing due now is left."""
        return send_due_messages(self.database, **self._sending())

    def _sending(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "public_url": self.public_url,
            "worker_id": self.worker_id,
            "clock": self.clock,
            "concurrency": self.send_concurrency,
        }

    def reconcile(self) -> int:
        """Ask Twilio about messages whose status callbacks never came."""
        return refresh_unconfirmed(self.database, gateway=self.gateway, clock=self.clock)

    def held_statuses(self) -> int:
        """Apply status callbacks that came before their sends were recorded."""
        return apply_held_statuses(self.database, clock=self.clock)

    def followups(self) -> int:
        return run_followups(self.database, clock=self.clock)

    def watchdog(self) -> int:
        return run_watchdog(self.database, clock=self.clock)

    def dms_writes(self) -> int:
        """Write customers' answers back to the DMSs whose adapters can."""
        from app.repair_orders.write_back import write_due

        return write_due(self.database, adapters=self.adapters, clock=self.clock)

    def run_once(self) -> RunReport:
        """Everything due now, once: poll, plan, send. Retries not yet due wait."""
        report = RunReport()
        report.polls = self.poll_every_rooftop()
        report.followups_queued = self.followups()
        report.watchdog_actions = self.watchdog()
        report.dispatch = self.dispatch_until_idle()
        self.held_statuses()
        self.dms_writes()
        return report

    def close(self) -> None:
        self.polls.shutdown()
        for resource in (self.adapters, self.gateway):
            close = getattr(resource, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
