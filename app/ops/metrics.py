"""Prometheus metrics: what the database says at scrape time, plus this process's counters.

Two kinds:

- **From the database, at scrape time** (`DatabaseCollector`): messages by state
  and channel, outbox depth and the age of the oldest due message, each rooftop's
  DMS poll lag and consecutive failures, the advisor inbox (open tasks and the
  oldest one's age), and Twilio error codes seen on messages in the last hour.
  Every web process reports the same numbers, whichever worker did the work.
- **Counted by this process** through the tiny API below, which any code may call:
  `observe_send(seconds)`, `count_twilio_error(code)`, `observe_webhook(path, seconds)`.
  A web process counts webhooks; a worker counts sends (see `serve_worker_metrics`).

Each app gets its own `CollectorRegistry` (`build_registry`), never the global
default one, so tests can build many apps in one process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.conversations.models import Task
from app.db import utcnow
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import DmsPollState

log = logging.getLogger(__name__)

__all__ = [
    "DatabaseCollector",
    "ProcessCollector",
    "build_registry",
    "count_twilio_error",
    "observe_send",
    "observe_webhook",
    "serve_worker_metrics",
]

# --- this process's counters ------------------------------------------------------

# registry=None: the metrics live here and are exposed through each app's registry
# by ProcessCollector, never through prometheus_client's global default registry.
_SEND_SECONDS = Histogram(
    "pitwall_send_seconds",
    "Time to hand one message to Twilio (the API call, not delivery).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=None,
)
_TWILIO_ERRORS = Counter(
    "pitwall_twilio_errors",
    "Errors Twilio answered to this process, by Twilio error code.",
    ["code"],
    registry=None,
)
_WEBHOOK_SECONDS = Histogram(
    "pitwall_webhook_seconds",
    "Time to answer a Twilio webhook, by path.",
    ["path"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
    registry=None,
)
_PROCESS_METRICS: tuple[Any, ...] = (_SEND_SECONDS, _TWILIO_ERRORS, _WEBHOOK_SECONDS)


def observe_send(seconds: float) -> None:
    """Record how long one send call to Twilio took."""
    _SEND_SECONDS.observe(max(0.0, seconds))


def count_twilio_error(code: int | str | None) -> None:
    """Count one error answered by Twilio (`None` for a network failure without a code)."""
    _TWILIO_ERRORS.labels(code=str(code) if code not in (None, "") else "none").inc()


def observe_webhook(path: str, seconds: float) -> None:
    """Record how long one webhook (e.g. `/webhooks/twilio/messages`) took to answer."""
    _WEBHOOK_SECONDS.labels(path=path).observe(max(0.0, seconds))


class ProcessCollector(Collector):
    """Exposes the counters above through an app's own registry."""

    def collect(self) -> Iterator[Metric]:
        for metric in _PROCESS_METRICS:
            yield from metric.collect()


# --- from the database at scrape time ---------------------------------------------

# States in which a message still waits to be sent (the outbox proper).
WAITING_STATES = ("pending",)


class DatabaseCollector(Collector):
    """Reads the numbers that matter from the database on each scrape.

    A few grouped queries in one short read-only transaction; a scrape never writes.
    """

    def __init__(
        self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        families: list[Metric] = []
        try:
            with self._sessions() as session:
                families = list(_database_families(session, now))
                session.rollback()
        except SQLAlchemyError as exc:
            # A scrape must still answer (with the process counters) when the database
            # is down or not migrated yet: that is exactly when someone looks.
            log.warning("metrics: cannot read the database: %s", str(exc).splitlines()[0])
            families = []
        yield GaugeMetricFamily(
            "pitwall_database_up",
            "1 when the scrape could read the database, 0 when it could not.",
            value=1 if families else 0,
        )
        yield from families


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def _database_families(session: Session, now: datetime) -> Iterable[Metric]:
    by_state = GaugeMetricFamily(
        "pitwall_messages",
        "Outbound messages by state and channel (all time).",
        labels=["state", "channel"],
    )
    rows = session.execute(
        select(OutboundMessage.state, OutboundMessage.channel, func.count())
        .group_by(OutboundMessage.state, OutboundMessage.channel)
        .order_by(OutboundMessage.state, OutboundMessage.channel)
    )
    for state, channel, count in rows:
        by_state.add_metric([state, channel], count)
    yield by_state

    depth, oldest_due = session.execute(
        select(func.count(), func.min(OutboundMessage.not_before)).where(
            OutboundMessage.state.in_(WAITING_STATES), OutboundMessage.not_before <= now
        )
    ).one()
    # min() over a TypeDecorator column comes back raw on SQLite: normalise it.
    yield GaugeMetricFamily(
        "pitwall_outbox_due", "Messages due to be sent now (outbox depth).", value=depth
    )
    yield GaugeMetricFamily(
        "pitwall_outbox_oldest_due_seconds",
        "How long the oldest due message has been waiting (0 when none).",
        value=_age(now, as_utc(oldest_due)),
    )

    lag = GaugeMetricFamily(
        "pitwall_dms_poll_lag_seconds",
        "Seconds since the rooftop's DMS was last read successfully.",
        labels=["rooftop"],
    )
    failures = GaugeMetricFamily(
        "pitwall_dms_poll_consecutive_failures",
        "Failed DMS polls in a row for the rooftop (0 when the last one worked).",
        labels=["rooftop"],
    )
    polls = session.execute(
        select(Rooftop.slug, DmsPollState.last_success_at, DmsPollState.consecutive_failures)
        .join(DmsPollState, DmsPollState.rooftop_id == Rooftop.id, isouter=True)
        .where(Rooftop.active.is_(True))
        .order_by(Rooftop.slug)
    )
    for slug, last_success, failed in polls:
        if last_success is not None:
            lag.add_metric([slug], _age(now, last_success))
        failures.add_metric([slug], failed or 0)
    yield lag
    yield failures

    open_tasks, oldest_task = session.execute(
        select(func.count(), func.min(Task.created_at)).where(Task.state == "open")
    ).one()
    yield GaugeMetricFamily(
        "pitwall_inbox_open_tasks", "Advisor tasks (replies, callbacks) still open.", open_tasks
    )
    yield GaugeMetricFamily(
        "pitwall_inbox_oldest_open_seconds",
        "How long the oldest open task has been waiting (0 when none).",
        value=_age(now, as_utc(oldest_task)),
    )

    recent = GaugeMetricFamily(
        "pitwall_message_errors_last_hour",
        "Messages updated in the last hour carrying a Twilio error code, by code.",
        labels=["code"],
    )
    codes = session.execute(
        select(OutboundMessage.error_code, func.count())
        .where(
            OutboundMessage.error_code.is_not(None),
            OutboundMessage.updated_at >= now - timedelta(hours=1),
        )
        .group_by(OutboundMessage.error_code)
        .order_by(OutboundMessage.error_code)
    )
    for code, count in codes:
        recent.add_metric([str(code)], count)
    yield recent


def as_utc(value: Any) -> datetime | None:
    """Aggregates bypass the column type: SQLite hands back text or naive datetimes."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return None


_registry_lock = threading.Lock()


def build_registry(
    sessions: sessionmaker[Session] | None, *, clock: Callable[[], datetime] = utcnow
) -> CollectorRegistry:
    """A fresh registry: this process's counters, plus the database's numbers when given."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessCollector())
    if sessions is not None:
        registry.register(DatabaseCollector(sessions, clock=clock))
    return registry


def serve_worker_metrics(port: int, host: str = "127.0.0.1") -> CollectorRegistry:
    """Expose a worker's own counters (send latency, Twilio errors) on host:port/metrics.

    A worker has no web app; the database's numbers come from the web app's /metrics.
    Bound to loopback by default: scrape it from the same host or a sidecar.
    """
    registry = build_registry(None)
    with _registry_lock:
        start_http_server(port, addr=host, registry=registry)
    return registry
