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
from app.db import utcnow
from app.deps import Database
from app.followups.jobs import run_followups, run_watchdog
from app.messaging.dispatcher import DispatchResult, dispatch_due
from app.repair_orders.changes import ChangeHook
from app.repair_orders.poller import PollResult, poll_due_rooftops
from integrations.twilio.base import MessageGateway

Clock = Callable[[], datetime]


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class RunReport:
    """What one run did, for the operator's terminal and for tests."""

    polls: list[PollResult] = field(default_factory=list)
    followups_queued: int = 0
    watchdog_actions: int = 0
    dispatch: list[DispatchResult] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.dispatch)

    def summary(self) -> str:
        polled = ", ".join(p.summary() for p in self.polls) or "no rooftops"
        outcome: dict[str, int] = {}
        for result in self.dispatch:
            for state, count in result.by_state().items():
                outcome[state] = outcome.get(state, 0) + count
        sent = ", ".join(f"{n} {state}" for state, n in sorted(outcome.items())) or "nothing due"
        return (
            f"polled: {polled}\n"
            f"follow-ups queued: {self.followups_queued}; "
            f"watchdog actions: {self.watchdog_actions}\n"
            f"messages: {sent}"
        )


class Worker:
    """Holds what a worker keeps between ticks: the gateway, DMS adapters, its id."""

    def __init__(
        self,
        database: Database,
        *,
        public_url: str,
        gateway: MessageGateway,
        adapters: Callable[[Any], Any],
        hooks: list[ChangeHook],
        clock: Clock = utcnow,
        worker_id: str | None = None,
        send_concurrency: int = 16,
    ) -> None:
        self.database = database
        self.public_url = public_url
        self.gateway = gateway
        self.adapters = adapters
        self.hooks = hooks
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self.send_concurrency = send_concurrency

    @classmethod
    def from_settings(cls, settings: Settings, database: Database) -> Worker:
        from app.wiring import AdapterCache, build_gateway, change_hooks

        return cls(
            database,
            public_url=settings.public_url,
            gateway=build_gateway(settings),
            adapters=AdapterCache(),
            hooks=change_hooks(),
        )

    def poll(self, *, force: bool = False) -> list[PollResult]:
        """Poll each rooftop whose interval has passed (all of them when forced)."""
        return poll_due_rooftops(
            self.database,
            adapter_factory=self.adapters,
            hooks=self.hooks,
            clock=self.clock,
            worker_id=self.worker_id,
            force=force,
        )

    def dispatch(self, *, until_idle: bool = False) -> list[DispatchResult]:
        """Send what is due now; with until_idle, keep claiming until nothing due is left."""
        results = []
        while True:
            result = dispatch_due(
                self.database,
                gateway=self.gateway,
                public_url=self.public_url,
                worker_id=self.worker_id,
                clock=self.clock,
                concurrency=self.send_concurrency,
            )
            results.append(result)
            if not until_idle or result.claimed == 0:
                return results

    def followups(self) -> int:
        return run_followups(self.database, clock=self.clock)

    def watchdog(self) -> int:
        return run_watchdog(self.database, clock=self.clock)

    def run_once(self) -> RunReport:
        """Everything due now, once: poll, plan, send. Retries not yet due wait."""
        report = RunReport()
        report.polls = self.poll(force=True)
        report.followups_queued = self.followups()
        report.watchdog_actions = self.watchdog()
        report.dispatch = self.dispatch(until_idle=True)
        return report

    def close(self) -> None:
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
