"""Memory: a worker's RSS after dispatching 100,000 messages, and over a soak after that.

The worker is a child process running the dispatcher the way `pitwall worker`
ticks it (`Worker.dispatch_until_idle()` about once a second), sending to the
Twilio fake at 0 ms. This process samples the child's RSS with psutil once a
second. During the soak it keeps the worker busy by making 1,000 sent rows due
again every second. The soak lasts PITWALL_BENCH_SOAK_SECONDS (`--soak-seconds`;
default 600 s, 30 s with --quick).

`python -m bench.memory --url URL --fake URL` is the child.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select, update

from bench.children import ACCOUNT_SID, AUTH_TOKEN, CONCURRENCY, PUBLIC_URL
from bench.common import (
    ROOT,
    BenchResult,
    Target,
    backends,
    bench_database,
    long_run,
    open_database,
)
from bench.dispatch import seed
from bench.twilio_fake import FakeTwilio

RSS_BOUND_MB = 150.0
GROWTH_BOUND_MB = 10.0
SOAK_REFILL = 1000  # rows made due again per second of soak


def soak_seconds(quick: bool) -> float:
    default = "30" if quick else "600" if long_run() else "90"
    return float(os.environ.get("PITWALL_BENCH_SOAK_SECONDS", default))


def _stop_on_stdin(stop: threading.Event) -> None:
    """The parent says stop by writing a line (or closing our stdin)."""
    sys.stdin.readline()
    stop.set()


def child_main(args: argparse.Namespace) -> None:
    from app.cli import prepare_worker_gc
    from app.repair_orders.jobs import AdapterCache
    from app.worker import Worker
    from integrations.twilio.gateway import TwilioGateway

    stop = threading.Event()
    database = open_database(args.url)
    gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=args.fake, timeout=30)
    worker = Worker(
        database,
        public_url=PUBLIC_URL,
        gateway=gateway,
        adapters=AdapterCache(),
        hooks=[],
        send_concurrency=CONCURRENCY,
    )
    prepare_worker_gc()  # as `pitwall worker`
    threading.Thread(target=_stop_on_stdin, args=(stop,), daemon=True).start()
    print("ready", flush=True)
    while not stop.is_set():
        if worker.dispatch_until_idle().claimed == 0:
            stop.wait(1.0)  # the scheduler's dispatch tick
    worker.close()


def _rss_mb(process: object) -> float:
    import psutil

    assert isinstance(process, psutil.Process)
    return float(process.memory_info().rss) / 1e6


def _sent(database_url: str) -> int:
    from app.messaging.models import OutboundMessage

    database = open_database(database_url, pool_size=1)
    with database.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.state == "queued")
        )
    database.engine.dispose()
    return int(count or 0)


def _make_due_again(database_url: str, first_id: int, n: int, total: int) -> int:
    """Make rows [first_id, first_id + n) due again (wrapping); returns the next first id."""
    from app.db import utcnow
    from app.messaging.models import OutboundMessage

    database = open_database(database_url, pool_size=1)
    last = first_id + n
    with database.transaction() as session:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id >= first_id, OutboundMessage.id < last)
            .where(OutboundMessage.state == "queued")
            .values(
                state="pending",
                provider_sid=None,
                sent_at=None,
                send_started_at=None,
                not_before=utcnow(),
            )
        )
    database.engine.dispose()
    return last if last <= total else 1


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    backend = backends()[0]
    count = 5000 if quick else 100_000 if long_run() else 20_000
    return [measure(backend, pg_url, sqlite_dir, count=count, soak=soak_seconds(quick))]


def measure(backend: str, pg_url: str, sqlite_dir: Path, *, count: int, soak: float) -> BenchResult:
    """Dispatch `count` messages in a child worker, then soak it for `soak` seconds."""
    import psutil

    with (
        bench_database(backend, pg_url=pg_url, sqlite_dir=sqlite_dir, name="memory") as url,
        FakeTwilio() as fake,
    ):
        seed(url, count)
        fake.control(keep_messages=False, reset=True)
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.memory", "--url", url, "--fake", fake.url],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("the memory bench worker did not start")
            process = psutil.Process(child.pid)
            rss_start = _rss_mb(process)
            peak = rss_start
            started = time.perf_counter()
            while _sent(url) < count:
                if child.poll() is not None:
                    raise RuntimeError(f"the worker exited with {child.returncode}")
                time.sleep(1.0)
                peak = max(peak, _rss_mb(process))
            first_pass = time.perf_counter() - started
            rss_after = _rss_mb(process)
            samples: list[float] = []
            next_id = 1
            soak_end = time.monotonic() + soak
            while time.monotonic() < soak_end:
                next_id = _make_due_again(url, next_id, SOAK_REFILL, count)
                time.sleep(1.0)
                samples.append(_rss_mb(process))
            peak = max([peak, *samples])
            soak_sent = fake.stats()["count"] - count
        finally:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=60)
    window = max(1, len(samples) // 10)
    growth = statistics.mean(samples[-window:]) - statistics.mean(samples[:window])
    figures: dict[str, float | int | str] = {
        "messages": count,
        "first_pass_msg_s": round(count / first_pass, 1),
        "rss_at_start_mb": round(rss_start, 1),
        "rss_after_first_pass_mb": round(rss_after, 1),
        "rss_peak_mb": round(peak, 1),
        "soak_seconds": round(soak),
        "soak_messages": soak_sent,
        "rss_soak_first_tenth_mb": round(statistics.mean(samples[:window]), 1),
        "rss_soak_last_tenth_mb": round(statistics.mean(samples[-window:]), 1),
    }
    targets = [
        Target(f"RSS after {count:,} messages", rss_after, RSS_BOUND_MB, "<=", "MB"),
        Target("RSS peak (run + soak)", peak, RSS_BOUND_MB, "<=", "MB"),
        Target(f"RSS growth over {soak:.0f} s soak", growth, GROWTH_BOUND_MB, "<=", "MB"),
    ]
    return BenchResult(f"memory: worker RSS ({backend})", figures, targets)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--fake", required=True)
    child_main(parser.parse_args())


if __name__ == "__main__":
    main()
