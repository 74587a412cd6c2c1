"""Scale-out: several worker processes on one PostgreSQL share the work, each job done once.

Three demonstrations, counted rather than timed:

1. Messages: three dispatching workers drain one outbox (FOR UPDATE SKIP LOCKED);
   each worker's share, duplicates and lost counted at the Twilio fake.
2. Polls and scheduled jobs: three workers run the real scheduler (`run_forever`:
   poll, dispatch, follow-ups, watchdog, reconcile, alerts) on the sample dealer's
   simulator DMS. Every DMS fetch is timed per rooftop: two workers never poll one
   rooftop at the same time (the `dms:<rooftop>` lease); every status text the
   polls planned reaches the fake once.
3. A killed worker: one worker claims a batch, its sends in flight (the fake
   answers after 3 s), and is SIGKILLed. After its lease the others take the rows
   over, find the messages that did reach Twilio and adopt them instead of
   sending twice.

`python -m bench.scale scheduler|killable|survivor ...` are the children.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.children import ACCOUNT_SID, AUTH_TOKEN, CONCURRENCY, PUBLIC_URL, _child, run_children
from bench.common import (
    ROOT,
    BenchResult,
    Target,
    backends,
    bench_database,
    load_sample_dealer,
    long_run,
    open_database,
)
from bench.dispatch import seed
from bench.twilio_fake import FakeTwilio

WORKERS = 3
KILL_COUNT = 300
KILL_LEASE_SECONDS = 40  # > LEASE_SAFETY (30 s), so the doomed worker does start its sends


# --- children --------------------------------------------------------------------------


class _RecordingAdapter:
    """A DMS adapter that notes when each fetch ran, and is a little slow about it."""

    def __init__(self, inner: Any, rooftop_id: int, log: list[tuple[int, float, float]]) -> None:
        self._inner, self._rooftop_id, self._log = inner, rooftop_id, log

    def fetch_changed(self, since: Any) -> Iterator[Any]:
        started = time.time()
        try:
            for page in self._inner.fetch_changed(since):
                time.sleep(0.2)  # a slow DMS: a wider window for two pollers to collide in
                yield page
        finally:
            self._log.append((self._rooftop_id, started, time.time()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _RecordingAdapters:
    def __init__(self) -> None:
        from app.repair_orders.jobs import AdapterCache

        self.inner = AdapterCache()
        self.log: list[tuple[int, float, float]] = []

    def __call__(self, rooftop: Any) -> Any:
        return _RecordingAdapter(self.inner(rooftop), rooftop.id, self.log)

    def close(self) -> None:
        self.inner.close()


def _stop_on_stdin(stop: threading.Event) -> None:
    """The parent says stop by writing a line (or closing our stdin)."""
    sys.stdin.readline()
    stop.set()


def _gateway(fake_url: str) -> Any:
    from integrations.twilio.gateway import TwilioGateway

    return TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=fake_url, timeout=30)


def scheduler_main(args: argparse.Namespace) -> dict[str, Any]:
    """The real scheduler, as `pitwall worker` runs it, until the parent closes stdin."""
    from app.scheduler import run_forever
    from app.wiring import change_hooks
    from app.worker import Worker

    adapters = _RecordingAdapters()
    stop = threading.Event()
    worker = Worker(
        open_database(args.url),
        public_url=PUBLIC_URL,
        gateway=_gateway(args.fake),
        adapters=adapters,
        hooks=change_hooks(),
        send_concurrency=CONCURRENCY,
    )
    threading.Thread(target=_stop_on_stdin, args=(stop,), daemon=True).start()
    print("ready", flush=True)
    started = time.time()
    run_forever(worker, stop)
    worker.close()
    return {"worker": worker.worker_id, "fetches": adapters.log, "started": started}


def killable_main(args: argparse.Namespace) -> dict[str, Any]:
    """Claim one batch with a short lease and start sending; the parent kills us mid-send."""
    from app.messaging.dispatcher import dispatch_due

    database = open_database(args.url)
    print("ready", flush=True)
    sys.stdin.readline()
    dispatch_due(
        database,
        gateway=_gateway(args.fake),
        public_url=PUBLIC_URL,
        worker_id="doomed",
        batch_size=100,
        concurrency=100,
        lease=timedelta(seconds=KILL_LEASE_SECONDS),
    )
    return {}


def survivor_main(args: argparse.Namespace) -> dict[str, Any]:
    """Dispatch until every message has left the outbox (or the deadline passes)."""
    from app.messaging.dispatcher import DispatchResult
    from app.messaging.jobs import send_due_messages
    from app.messaging.models import OutboundMessage

    database = open_database(args.url)
    gateway = _gateway(args.fake)
    print("ready", flush=True)
    sys.stdin.readline()
    totals: Counter[str] = Counter()
    started, deadline = time.time(), time.monotonic() + KILL_LEASE_SECONDS + 60
    while time.monotonic() < deadline:
        result: DispatchResult = send_due_messages(
            database, gateway=gateway, public_url=PUBLIC_URL, worker_id=f"survivor-{os.getpid()}"
        )
        for name in ("claimed", "sent", "adopted", "lost_claims"):
            totals[name] += getattr(result, name)
        with database.transaction() as session:
            left = session.scalar(
                select(func.count())
                .select_from(OutboundMessage)
                .where(OutboundMessage.state.in_(("pending", "claimed", "sending")))
            )
        if not left:
            break
        time.sleep(1.0)
    return {**totals, "started": started, "finished": time.time()}


def _children(mode: str, n: int, **options: Any) -> list[subprocess.Popen[str]]:
    return [_scale_child(mode, **options) for _ in range(n)]


def _scale_child(mode: str, **options: Any) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.scale", mode]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


# --- the three demonstrations ------------------------------------------------------------


def _outbox(url: str) -> dict[str, int]:
    from app.messaging.models import OutboundMessage

    database = open_database(url, pool_size=1)
    with database.transaction() as session:
        rows = session.execute(
            select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)
        ).all()
    database.engine.dispose()
    return {str(state): int(n) for state, n in rows}


def shared_outbox(pg_url: str, sqlite_dir: Path, count: int) -> dict[str, Any]:
    with (
        bench_database("postgresql", pg_url=pg_url, sqlite_dir=sqlite_dir, name="scale_a") as url,
        FakeTwilio(latency_ms=50) as fake,
    ):
        bodies = {form["Body"] for form in seed(url, count)}
        children = [
            _child("worker", url=url, fake=fake.url, concurrency=CONCURRENCY)
            for _ in range(WORKERS)
        ]
        reports = run_children(children)
        received = fake.bodies()
        left = _outbox(url)
    return {
        "per_worker_sent": [r["sent"] for r in reports],
        "duplicates": len(received) - len(set(received)),
        "lost": len(bodies - set(received)) + sum(n for s, n in left.items() if s != "queued"),
    }


def _overlaps(fetches: list[tuple[str, int, float, float]]) -> int:
    """Pairs of fetches of one rooftop by two workers that ran at the same time."""
    overlaps = 0
    by_rooftop: dict[int, list[tuple[float, float, str]]] = {}
    for worker, rooftop, start, end in fetches:
        by_rooftop.setdefault(rooftop, []).append((start, end, worker))
    for spans in by_rooftop.values():
        spans.sort()
        for (_, end, worker), (start, _, other) in itertools.pairwise(spans):
            if start < end and worker != other:
                overlaps += 1
    return overlaps


def shared_schedule(pg_url: str, sqlite_dir: Path, seconds: float) -> dict[str, Any]:
    from app.dealers.models import Rooftop

    with (
        bench_database("postgresql", pg_url=pg_url, sqlite_dir=sqlite_dir, name="scale_b") as url,
        FakeTwilio() as fake,
    ):
        database = open_database(url)
        load_sample_dealer(database)
        with database.transaction() as session:
            for rooftop in session.scalars(select(Rooftop)):
                # Send whatever the polls plan, at any hour the bench runs.
                rooftop.config = {
                    **rooftop.config,
                    "quiet_hours": "off",
                    "send_rate_per_second": 1000,
                }
        database.engine.dispose()
        children = _children("scheduler", WORKERS, url=url, fake=fake.url)
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a scheduler worker did not start")
        time.sleep(seconds)
        reports = []
        for child in children:
            out, _ = child.communicate(input="stop\n", timeout=120)
            reports.append(json.loads(out.strip().splitlines()[-1]))
        received = fake.bodies()
        left = _outbox(url)
    fetches = [(r["worker"], *f) for r in reports for f in r["fetches"]]
    per_worker = [len(r["fetches"]) for r in reports]
    return {
        "seconds": seconds,
        "polls_per_worker": per_worker,
        "poll_overlaps": _overlaps(fetches),
        "messages_planned": sum(left.values()),
        "outbox_states": left,
        "messages_sent": sum(n for s, n in left.items() if s in ("queued", "sent", "delivered")),
        "duplicates": len(received) - len(set(received)),
    }


def killed_worker(pg_url: str, sqlite_dir: Path, count: int) -> dict[str, Any]:
    with (
        bench_database("postgresql", pg_url=pg_url, sqlite_dir=sqlite_dir, name="scale_c") as url,
        FakeTwilio(latency_ms=3000) as fake,
    ):
        bodies = {form["Body"] for form in seed(url, count)}
        doomed = _scale_child("killable", url=url, fake=fake.url)
        assert doomed.stdout is not None and doomed.stdin is not None
        doomed.stdout.readline()
        doomed.stdin.write("go\n")
        doomed.stdin.flush()
        time.sleep(2.0)  # its batch is claimed and its requests are at "Twilio", unanswered
        reached_twilio = fake.stats()["count"]
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
        stranded = _outbox(url).get("sending", 0)
        fake.control(latency_ms=0)
        reports = run_children(_children("survivor", WORKERS - 1, url=url, fake=fake.url))
        received = fake.bodies()
        left = _outbox(url)
    return {
        "stranded_by_kill": stranded,
        "reached_twilio_before_kill": reached_twilio,
        "adopted_by_others": sum(r["adopted"] for r in reports),
        "sent_by_others": sum(r["sent"] for r in reports),
        "duplicates": len(received) - len(set(received)),
        "lost": len(bodies - set(received)) + sum(n for s, n in left.items() if s != "queued"),
    }


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    if "postgresql" not in backends():
        return []  # PostgreSQL only
    shared = shared_outbox(pg_url, sqlite_dir, 600 if quick else 3000 if long_run() else 1500)
    # 75 s: follow-ups and the watchdog tick every 60 s on all three workers at once.
    schedule = shared_schedule(pg_url, sqlite_dir, 15 if quick else 75)
    killed = killed_worker(pg_url, sqlite_dir, KILL_COUNT)
    stranded = killed["stranded_by_kill"]
    figures: dict[str, float | int | str] = {
        "workers": WORKERS,
        "outbox_per_worker_sent": "/".join(map(str, shared["per_worker_sent"])),
        "schedule_seconds": schedule["seconds"],
        "polls_per_worker": "/".join(map(str, schedule["polls_per_worker"])),
        "poll_overlaps": schedule["poll_overlaps"],
        "scheduled_messages_planned": schedule["messages_planned"],
        "scheduled_messages_sent": schedule["messages_sent"],
        "scheduled_outbox_states": ",".join(
            f"{k}={v}" for k, v in schedule["outbox_states"].items()
        ),
        "kill_stranded": killed["stranded_by_kill"],
        "kill_reached_twilio": killed["reached_twilio_before_kill"],
        "kill_adopted": killed["adopted_by_others"],
        "kill_sent_by_others": killed["sent_by_others"],
    }
    idle_workers = sum(1 for n in shared["per_worker_sent"] if n == 0)
    targets = [
        Target("outbox: workers that got no share", idle_workers, 0, "<=", "workers"),
        Target("outbox: duplicates + lost", shared["duplicates"] + shared["lost"], 0, "<="),
        Target("polls: one rooftop polled by two at once", schedule["poll_overlaps"], 0, "<="),
        Target("scheduled: messages received twice", schedule["duplicates"], 0, "<="),
        Target("killed worker: duplicates + lost", killed["duplicates"] + killed["lost"], 0, "<="),
        Target(
            "killed worker: its claimed rows finished",
            # Others sent or adopted everything: the rows it never claimed, and its own.
            killed["adopted_by_others"] + killed["sent_by_others"] - (KILL_COUNT - stranded),
            stranded,
            ">=",
        ),
    ]
    return [BenchResult("scale-out: 3 workers (postgresql)", figures, targets)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("scheduler", "killable", "survivor"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--fake", required=True)
    args = parser.parse_args()
    report = {"scheduler": scheduler_main, "killable": killable_main, "survivor": survivor_main}[
        args.mode
    ](args)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
