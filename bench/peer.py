"""A peer: the same no-op job claimed and completed by Pitwall's outbox and by procrastinate.

Both run on the same PostgreSQL server, one process, one after the other, jobs
queued beforehand (not timed). Pitwall's path is the dispatcher's: claim a batch
with `claim_due` (SKIP LOCKED) in one transaction, then record each job done
through `outcomes.record` (guarded by the claim token) in another, with nothing
sent. Procrastinate's is its own worker (`run_worker(wait=False)`), which fetches
one job per round trip and finishes it, at concurrency 1 and 10.

procrastinate is a benchmark-only dependency (the `bench` extra).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.common import BenchResult, Target, backends, bench_database, open_database, ratio
from bench.dispatch import reset, seed

BATCH = 100


def pitwall_rate(url: str, count: int, *, batch: int = BATCH) -> float:
    """Claim and complete `count` due outbox rows, a batch per claim; jobs per second."""
    from app.db import utcnow
    from app.messaging import outcomes
    from app.messaging.dispatcher import SendPlan, claim_due
    from integrations.twilio.base import OutgoingMessage, SentMessage

    database = open_database(url, pool_size=2)
    done = 0
    started = time.perf_counter()
    while True:
        token, now = str(uuid.uuid4()), utcnow()
        with database.transaction() as session:
            claimed = claim_due(
                session, token=token, now=now, limit=batch, lease=timedelta(minutes=5)
            )
            plans = [
                SendPlan(
                    message_id=row.id,
                    token=token,
                    outgoing=OutgoingMessage(to=row.to_address or ""),
                    reconcile=False,
                    created_after=now,
                    claimed_until=now + timedelta(minutes=5),
                    sender="",
                    rate=1.0,
                )
                for row, _ in claimed
            ]
        if not plans:
            break
        # The no-op job "succeeded": record it as accepted, as the dispatcher does.
        finished = [
            outcomes.SendOutcome(
                plan, sent=SentMessage(sid="SM" + uuid.uuid4().hex, status="queued")
            )
            for plan in plans
        ]
        counts = outcomes.record(database, finished, now=utcnow())
        done += counts["sent"]
    elapsed = time.perf_counter() - started
    database.engine.dispose()
    if done != count:
        raise RuntimeError(f"pitwall completed {done} of {count} jobs")
    return count / elapsed


def procrastinate_rate(url: str, count: int, *, concurrency: int) -> float:
    """Queue `count` no-op jobs, then time procrastinate's worker until the queue is empty."""
    import procrastinate
    import psycopg
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    conninfo = make_conninfo(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password or "",
        dbname=parsed.database or "postgres",
    )
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop", queue=f"bench{concurrency}")
    def noop(n: int) -> None:
        return None

    with app.open():
        if concurrency == 1:
            app.schema_manager.apply_schema()
        for start in range(0, count, 1000):
            jobs: list[dict[str, Any]] = [{"n": i} for i in range(start, min(count, start + 1000))]
            noop.batch_defer(*jobs)
        started = time.perf_counter()
        app.run_worker(
            queues=[f"bench{concurrency}"],
            wait=False,
            concurrency=concurrency,
            install_signal_handlers=False,
            listen_notify=False,
        )
        elapsed = time.perf_counter() - started
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND status = %s",
            (f"bench{concurrency}", "succeeded"),
        ).fetchone()
    succeeded = row[0] if row else 0
    if succeeded != count:
        raise RuntimeError(f"procrastinate completed {succeeded} of {count} jobs")
    return count / elapsed


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    if "postgresql" not in backends():
        return []  # PostgreSQL only
    count = 1000 if quick else 10000
    with bench_database("postgresql", pg_url=pg_url, sqlite_dir=sqlite_dir, name="peer") as url:
        seed(url, count)
        pitwall = pitwall_rate(url, count)
        reset(url)
        # Like for like with procrastinate's one job per fetch: a claim of one row.
        pitwall_one = pitwall_rate(url, count, batch=1)
        peer_1 = procrastinate_rate(url, count, concurrency=1)
        peer_10 = procrastinate_rate(url, count, concurrency=10)
    best_peer = max(peer_1, peer_10)
    figures: dict[str, float | int | str] = {
        "jobs": count,
        "pitwall_batch": BATCH,
        "pitwall_jobs_s": round(pitwall, 1),
        "pitwall_batch1_jobs_s": round(pitwall_one, 1),
        "procrastinate_c1_jobs_s": round(peer_1, 1),
        "procrastinate_c10_jobs_s": round(peer_10, 1),
    }
    targets = [Target("pitwall / best procrastinate", ratio(pitwall, best_peer), 1.0, ">=", "x")]
    return [BenchResult("peer: claim+complete (postgresql)", figures, targets)]
