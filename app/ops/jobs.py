"""Operations jobs the worker runs: alert checks, once a minute.

A run is three short steps, so no database lock is held across the network:
evaluate and claim notices (one transaction), send them (no transaction), and
give back any alert notice that could not be sent (another transaction) so the
next run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from app.db import Database, utcnow
from app.ops.alerts import AlertNotifier, AlertSettings, Notice, evaluate_alerts, release_notice
from app.ops.logging import log_unit_of_work

log = logging.getLogger(__name__)

ALERT_CHECK_SECONDS = 60


@dataclass
class AlertRun:
    """What one alert check did."""

    sent: list[Notice] = field(default_factory=list)
    failed: list[Notice] = field(default_factory=list)


def run_alert_checks(
    database: Database,
    *,
    settings: AlertSettings | None = None,
    notifier: AlertNotifier | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> AlertRun:
    """Evaluate every alert condition and send what is new (an incident, a recovery)."""
    settings = settings or AlertSettings()
    notifier = notifier or AlertNotifier(settings)
    run = AlertRun()
    with log_unit_of_work("alert check"):
        with database.transaction() as session:
            notices = evaluate_alerts(session, now=clock(), settings=settings)
        for notice in notices:
            if notifier.deliver(notice):
                log.warning("%s", notice.subject, extra={"alert": notice.key})
                run.sent.append(notice)
            else:
                run.failed.append(notice)
        if run.failed:
            with database.transaction() as session:
                for notice in run.failed:
                    release_notice(session, notice=notice)
    return run
