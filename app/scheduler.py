"""APScheduler 3 wiring. The scheduler only ticks; database claims decide who does what.

Several workers may tick at once: DMS polls take a per-rooftop lease, the
dispatcher claims rows with SKIP LOCKED, follow-ups and watchdogs write through
unique dedupe keys. So a tick that two workers both run does the work once.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from app.ops.jobs import ALERT_CHECK_SECONDS, run_alert_checks
from app.worker import Worker

log = logging.getLogger(__name__)

# seconds between ticks; each job's own rules decide whether there is work
TICKS = {
    "poll": 5,
    "dispatch": 1,
    "held_statuses": 5,
    "followups": 60,
    "watchdog": 60,
    "reconcile": 300,
    "dms_writes": 15,
    "alerts": ALERT_CHECK_SECONDS,
}


def build_scheduler(worker: Worker) -> BackgroundScheduler:
    """A scheduler whose jobs never overlap themselves and skip missed runs."""
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    jobs = {
        "poll": worker.poll_tick,
        "dispatch": worker.dispatch_until_idle,
        "held_statuses": worker.held_statuses,
        "followups": worker.followups,
        "watchdog": worker.watchdog,
        "reconcile": worker.reconcile,
        "dms_writes": worker.dms_writes,
        "alerts": lambda: run_alert_checks(worker.database, clock=worker.clock),
    }
    for name, job in jobs.items():
        scheduler.add_job(_logged(name, job), "interval", seconds=TICKS[name], id=name, name=name)
    return scheduler


def _logged(name: str, job: object) -> object:
    def run() -> None:
        try:
            job()  # type: ignore[operator]
        except Exception:
            # A failed tick is retried at the next one; the traceback goes to the log.
            log.exception("worker job %s failed", name)

    run.__name__ = f"tick_{name}"
    return run


def run_forever(worker: Worker, stop: threading.Event | None = None) -> None:
    """Tick until SIGINT/SIGTERM (or `stop` is set), then finish running jobs and exit."""
    stop = stop or threading.Event()
    scheduler = build_scheduler(worker)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the jobs in progress", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    scheduler.start()
    log.info("worker %s started", worker.worker_id)
    try:
        stop.wait()
    finally:
        scheduler.shutdown(wait=True)
        log.info("worker %s stopped", worker.worker_id)
