"""A peer, like for like: Pitwall's worker and procrastinate's, each a running worker
process doing the same no-op job, on the same PostgreSQL database.

- Pitwall: the dispatcher as `pitwall worker` runs it (`dispatch_due`: the claim,
  the policies, the send slots, a send on its pool, the guarded record), its job a
  message sent through a gateway that answers at once (no HTTP). One job per claim
  (`batch_size=1`), then its batch mode (batches of 100, as the worker claims).
- procrastinate: its worker (`run_worker(wait=False)`) with a no-op async task. It
  fetches one job per round trip whatever its settings; its fastest settings are
  the concurrency (1: one job per claim; 10: ten fetches in flight, its best mode
  here) and no listen/notify (a worker that drains a queue and exits polls anyway).

Every side queues its jobs before its process says ready (not timed) and is timed
in its own process from the go signal until its queue is empty. ROUNDS rounds, the
order reversed every other round; the figures are medians with their spread.
procrastinate is a benchmark-only dependency (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.children import PUBLIC_URL, _child, _ready_then_wait_for_go, run_children
from bench.common import BenchResult, Target, backends, bench_database, long_run, open_database
from bench.dispatch import reset, seed

BATCH = 100
ROUNDS = 3
PROCRASTINATE_BEST = 10  # its concurrency in its best mode


class NoopGateway:
    """A gateway whose every send is accepted at once: the job is the outbox's own work."""

    def send(self, msg: Any) -> Any:
        from integrations.twilio.base import SentMessage

        return SentMessage(sid="SM" + uuid.uuid4().hex, status="queued")

    def find_existing(self, **_: Any) -> None:
        return None

    def fetch(self, sid: str) -> Any:
        raise NotImplementedError("the peer bench never fetches")

    def check_credentials(self) -> str:
        return "bench"


def pitwall_main(args: argparse.Namespace) -> dict[str, Any]:
    """Drain the outbox as a worker would, `args.batch` jobs per claim."""
    from app.cli import prepare_worker_gc
    from app.messaging.dispatcher import dispatch_due

    database = open_database(args.url, pool_size=4)
    gateway = NoopGateway()
    prepare_worker_gc()
    _ready_then_wait_for_go()
    started, done = time.perf_counter(), 0
    while True:
        result = dispatch_due(
            database,
            gateway=gateway,
            public_url=PUBLIC_URL,
            worker_id="peer",
            batch_size=args.batch,
            concurrency=32,
            max_batches=1_000_000,
        )
        done += result.sent
        if result.claimed == 0:
            break
    elapsed = time.perf_counter() - started
    database.engine.dispose()
    return {"done": done, "seconds": elapsed}


def _conninfo(url: str) -> str:
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    return make_conninfo(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password or "",
        dbname=parsed.database or "postgres",
    )


def _procrastinate_app(url: str, queue: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_conninfo(url)))

    @app.task(name="noop", queue=queue)
    async def noop(n: int) -> None:
        return None

    return app, noop


def procrastinate_main(args: argparse.Namespace) -> dict[str, Any]:
    """Queue `args.count` no-op jobs, then run procrastinate's worker until none is left."""
    queue = f"bench_{uuid.uuid4().hex[:8]}"
    app, noop = _procrastinate_app(args.url, queue)
    with app.open():
        for start in range(0, args.count, 1000):
            noop.batch_defer(*({"n": i} for i in range(start, min(args.count, start + 1000))))
    _ready_then_wait_for_go()
    started = time.perf_counter()
    app.run_worker(
        queues=[queue],
        wait=False,
        concurrency=args.concurrency,
        install_signal_handlers=False,
        listen_notify=False,
    )
    elapsed = time.perf_counter() - started
    import psycopg

    with psycopg.connect(_conninfo(args.url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND status = %s",
            (queue, "succeeded"),
        ).fetchone()
    return {"done": row[0] if row else 0, "seconds": elapsed}


def _side(mode: str, url: str, count: int, **options: Any) -> float:
    """One timed run of one side in its own process: jobs per second."""
    (report,) = run_children([_child(mode, module="bench.peer", url=url, count=count, **options)])
    if report["done"] != count:
        raise RuntimeError(f"{mode} {options} completed {report['done']} of {count} jobs")
    return float(count / report["seconds"])


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    if "postgresql" not in backends():
        return []  # procrastinate is PostgreSQL only
    count = 300 if quick else 2000 if long_run() else 1000
    rounds = 1 if quick else ROUNDS
    rates: dict[str, list[float]] = {}
    with bench_database("postgresql", pg_url=pg_url, sqlite_dir=sqlite_dir, name="peer") as url:
        seed(url, count)
        app, _ = _procrastinate_app(url, "schema")
        with app.open():
            app.schema_manager.apply_schema()

        def pitwall(batch: int) -> None:
            reset(url)
            rates.setdefault(f"pitwall_batch{batch}", []).append(
                _side("pitwall", url, count, batch=batch)
            )

        def peer(concurrency: int) -> None:
            rates.setdefault(f"procrastinate_c{concurrency}", []).append(
                _side("procrastinate", url, count, concurrency=concurrency)
            )

        steps = [
            lambda: pitwall(1),
            lambda: peer(1),
            lambda: pitwall(BATCH),
            lambda: peer(PROCRASTINATE_BEST),
        ]
        for round_no in range(rounds):
            for step in steps if round_no % 2 == 0 else reversed(steps):
                step()
    median = {name: statistics.median(values) for name, values in rates.items()}
    figures: dict[str, float | int | str] = {"jobs": count, "rounds": rounds, "batch": BATCH}
    for name, values in rates.items():
        figures[f"{name}_jobs_s"] = round(median[name], 1)
        figures[f"{name}_jobs_s_spread"] = f"{min(values):.1f}-{max(values):.1f}"
    best_peer = max(median["procrastinate_c1"], median[f"procrastinate_c{PROCRASTINATE_BEST}"])
    targets = [
        Target(
            "one job per claim: pitwall / procrastinate c1",
            median["pitwall_batch1"] / median["procrastinate_c1"],
            1.0,
            ">=",
            "x",
        ),
        Target(
            "best modes: pitwall batch / best procrastinate",
            median[f"pitwall_batch{BATCH}"] / best_peer,
            1.0,
            ">=",
            "x",
        ),
    ]
    return [BenchResult("peer: worker processes, no-op job (postgresql)", figures, targets)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("pitwall", "procrastinate"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    mains = {"pitwall": pitwall_main, "procrastinate": procrastinate_main}
    print(json.dumps(mains[args.mode](args)), flush=True)


if __name__ == "__main__":
    main()
