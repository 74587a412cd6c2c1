"""Units of work the worker's scheduler runs each tick; each commits once.

The scheduler only ticks: what is due is decided by rows (touch state, dedupe keys),
so a tick that runs twice, runs late, or runs on two workers at once repeats nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.db import Database
from app.followups.service import queue_due_touches
from app.followups.watchdog import check_promises

Clock = Callable[[], datetime]


def run_followups(database: Database, *, clock: Clock) -> int:
    """Queue every declined-work touch that is due; returns how many messages were queued."""
    with database.transaction() as session:
        return queue_due_touches(session, now=clock())


def run_watchdog(database: Database, *, clock: Clock) -> int:
    """Late promises and stuck stages; returns how many messages and tasks were created."""
    with database.transaction() as session:
        return check_promises(session, now=clock())
