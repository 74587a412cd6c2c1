"""Dispatch throughput: Pitwall's worker vs a plain loop posting the same requests (the ceiling).

Both post the same messages (To, From, Body, StatusCallback) to the same Twilio
fake (bench/twilio_fake.py, its own process) with the same concurrency, each in
its own process started before timing begins. Duplicates and lost messages are
counted from what the fake received (over every run). At 0 ms, where the client's
CPU is the limit, the same loop is also run through Pitwall's own HTTP client (no
twilio library, no database) and reported beside the ceiling: the gateway prepares
less per request than a stock requests Session, so Pitwall can pass the plain loop
there, and this figure shows what the rest of the worker costs. Each rate is the best of
ROUNDS runs, for the ceiling and Pitwall alike. The two rooftops send through
numbers with `send_rate_per_second = 1000` (a short code or Messaging Service),
so pacing is not what limits the figures.

`python -m bench.dispatch worker|ceiling ...` is the child side of a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update

from bench.common import (
    ROOT,
    BenchResult,
    Target,
    backends,
    bench_database,
    load_sample_dealer,
    open_database,
    ratio,
)
from bench.twilio_fake import FakeTwilio

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-token"
PUBLIC_URL = "http://127.0.0.1:8000"
CONCURRENCY = 32
BATCH_SIZE = 100
ROUNDS = 2  # each measurement is the best of this many runs
QUICK_MESSAGES = 500
BENCH_RATE = 1000.0  # messages/s per sender: the config's maximum (short code / service)


# --- seeding ---------------------------------------------------------------------------


def seed(url: str, count: int) -> list[dict[str, str]]:
    """The sample dealer, `count` customers with one phone each, one due status text each.

    Returns the Twilio form each message becomes, for the ceiling to post.
    """
    from app.customers.models import Customer, CustomerPhone, Phone
    from app.db import utcnow
    from app.dealers.models import Rooftop
    from app.messaging.models import OutboundMessage

    database = open_database(url)
    load_sample_dealer(database)
    now = utcnow()
    with database.transaction() as session:
        rooftops = list(session.scalars(select(Rooftop).order_by(Rooftop.id)))
        for rooftop in rooftops:
            rooftop.config = {
                **rooftop.config,
                "quiet_hours": "off",
                "daily_cap": 50,
                "send_rate_per_second": BENCH_RATE,
            }
        group_id = rooftops[0].group_id
        senders = [(r.id, r.sms_from) for r in rooftops]
    numbers = [f"+1415{2_000_000 + i:07d}" for i in range(count)]
    forms: list[dict[str, str]] = []
    with database.engine.begin() as conn:
        conn.execute(
            insert(Customer),
            [
                {"id": i + 1, "group_id": group_id, "first_name": f"C{i}", "created_at": now}
                for i in range(count)
            ],
        )
        conn.execute(
            insert(Phone),
            [
                {
                    "id": i + 1,
                    "group_id": group_id,
                    "e164": n,
                    "as_typed": n,
                    "kind": "mobile",
                    "textable": True,
                    "created_at": now,
                }
                for i, n in enumerate(numbers)
            ],
        )
        conn.execute(
            insert(CustomerPhone),
            [
                {"customer_id": i + 1, "phone_id": i + 1, "kind": "mobile", "is_primary": True}
                for i in range(count)
            ],
        )
        rows = []
        for i, number in enumerate(numbers):
            rooftop_id, sender = senders[i % len(senders)]
            body = f"Pitwall bench message {i}: your car is in repair."
            rows.append(
                {
                    "rooftop_id": rooftop_id,
                    "customer_id": i + 1,
                    "phone_id": i + 1,
                    "kind": "status",
                    "purpose": "status",
                    "stage": "in_repair",
                    "dedupe_key": f"bench:{i}",
                    "channel": "sms",
                    "to_address": number,
                    "from_address": sender,
                    "body": body,
                    "state": "pending",
                    "not_before": now - timedelta(seconds=1),
                    "attempt": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            forms.append(
                {
                    "To": number,
                    "From": sender or "",
                    "Body": body,
                    "StatusCallback": PUBLIC_URL + "/webhooks/twilio/status",
                }
            )
        conn.execute(insert(OutboundMessage), rows)
        if conn.dialect.name == "postgresql":
            for table in ("customer", "phone"):
                conn.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
            conn.execute(text("ANALYZE"))
    database.engine.dispose()
    return forms


def reset(url: str) -> None:
    """Every bench message due again, as if never sent."""
    from app.db import utcnow
    from app.messaging.models import OutboundMessage

    database = open_database(url)
    with database.transaction() as session:
        session.execute(
            update(OutboundMessage).values(
                state="pending",
                claim_token=None,
                claimed_until=None,
                send_started_at=None,
                provider_sid=None,
                provider_status=None,
                sent_at=None,
                suppressed_reason=None,
                attempt=0,
                not_before=utcnow() - timedelta(seconds=1),
            )
        )
    database.engine.dispose()


def states(url: str) -> dict[str, int]:
    from sqlalchemy import func

    from app.messaging.models import OutboundMessage

    database = open_database(url)
    with database.transaction() as session:
        counted = dict(
            session.execute(
                select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)
            ).all()
        )
    database.engine.dispose()
    return {str(k): int(v) for k, v in counted.items()}


# --- the child processes ---------------------------------------------------------------


def _ready_then_wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def worker_main(args: argparse.Namespace) -> dict[str, Any]:
    """What `pitwall worker` does on its dispatch tick, until nothing is due."""
    from app.cli import prepare_worker_gc
    from app.repair_orders.jobs import AdapterCache
    from app.worker import Worker
    from integrations.twilio.gateway import TwilioGateway

    database = open_database(args.url, pool_size=4)
    gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=args.fake, timeout=30)
    worker = Worker(
        database,
        public_url=PUBLIC_URL,
        gateway=gateway,
        adapters=AdapterCache(),
        hooks=[],
        send_concurrency=args.concurrency,
    )
    prepare_worker_gc()  # as `pitwall worker` does before its first tick
    _ready_then_wait_for_go()
    started = time.time()
    totals: dict[str, Any] = {"sent": 0, "claimed": 0, "lost_claims": 0, "runs": 0}
    while True:
        result = worker.dispatch_until_idle()
        totals["runs"] += 1
        for name in ("sent", "claimed", "lost_claims"):
            totals[name] += getattr(result, name)
        if result.claimed == 0:
            break
    totals["started"], totals["finished"] = started, time.time()
    worker.close()
    return totals


def _plain_loop(
    args: argparse.Namespace, post: Callable[[str, dict[str, str]], None]
) -> dict[str, Any]:
    """Post every form with `post(url, form)` from a pool of `args.concurrency` threads,
    timed from the go signal: the plain loops that stand beside the worker."""
    forms = json.loads(Path(args.forms).read_text())
    url = f"{args.fake}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    _ready_then_wait_for_go()
    started = time.time()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(lambda form: post(url, form), forms))
    return {"sent": len(forms), "started": started, "finished": time.time()}


def ceiling_main(args: argparse.Namespace) -> dict[str, Any]:
    """The same requests, posted by a plain loop on the same pool size: requests, no database."""
    import requests

    local = threading.local()

    def post(url: str, form: dict[str, str]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        session.post(url, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=30).json()

    return _plain_loop(args, post)


def own_client_main(args: argparse.Namespace) -> dict[str, Any]:
    """The same plain loop through Pitwall's own HTTP client (the gateway's
    ThreadLocalHttpClient: requests' adapter, each request's head prepared once per
    shape), without the twilio library and without a database. Reported beside the
    ceiling: how much of a send the client itself costs, and so what the rest of the
    worker (twilio, the outbox) adds."""
    from integrations.twilio.gateway import ThreadLocalHttpClient

    client = ThreadLocalHttpClient(timeout=30)

    def post(url: str, form: dict[str, str]) -> None:
        body: dict[str, object] = dict(form)
        json.loads(client.request("POST", url, data=body, auth=(ACCOUNT_SID, AUTH_TOKEN)).text)

    try:
        return _plain_loop(args, post)
    finally:
        client.close()


def _child(mode: str, **options: Any) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.dispatch", mode]
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


def run_children(children: list[subprocess.Popen[str]], timeout: float = 600) -> list[dict]:
    """Wait for every child to be ready, say go to all, collect their JSON reports."""
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"bench child failed to start: {line!r}")
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = []
    for child in children:
        out, _ = child.communicate(timeout=timeout)
        if child.returncode != 0:
            raise RuntimeError(f"bench child exited {child.returncode}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


# --- one measured run ------------------------------------------------------------------


@dataclass
class Run:
    rate: float
    seconds: float
    duplicates: int
    lost: int


def _measure(fake: FakeTwilio, expected: set[str], children: list[subprocess.Popen[str]]) -> Run:
    reports = run_children(children)
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    bodies = fake.bodies()
    duplicates = len(bodies) - len(set(bodies))
    lost = len(expected - set(bodies))
    return Run(rate=len(expected) / seconds, seconds=seconds, duplicates=duplicates, lost=lost)


def _keep_best(runs: dict[str, Run], name: str, run: Run) -> None:
    """Keep the fastest run under `name`; duplicates and losses add up over every run."""
    best = runs.get(name)
    if best is not None:
        run.duplicates, run.lost = run.duplicates + best.duplicates, run.lost + best.lost
        if best.rate > run.rate:
            run.rate, run.seconds = best.rate, best.seconds
    runs[name] = run


def measure_backend(
    backend: str, *, count: int, pg_url: str, sqlite_dir: Path, latencies: tuple[float, ...]
) -> dict[str, Run]:
    """Ceiling and Pitwall (1 worker, and 3 workers at 50 ms) on one backend."""
    runs: dict[str, Run] = {}
    with bench_database(backend, pg_url=pg_url, sqlite_dir=sqlite_dir, name="dispatch") as url:
        forms = seed(url, count)
        expected = {f["Body"] for f in forms}
        forms_file = sqlite_dir / "dispatch_forms.json"
        forms_file.write_text(json.dumps(forms))
        with FakeTwilio() as fake:
            for latency in latencies:
                tag = f"{latency:g}ms"
                # Best of ROUNDS for every side alike: a shared machine's stalls only slow.
                for _ in range(ROUNDS):
                    fake.control(latency_ms=latency, reset=True)
                    ceiling = [
                        _child("ceiling", fake=fake.url, concurrency=CONCURRENCY, forms=forms_file)
                    ]
                    _keep_best(runs, f"ceiling_{tag}", _measure(fake, expected, ceiling))
                    if not latency:  # where the client's CPU is what limits
                        fake.control(reset=True)
                        own = [
                            _child(
                                "own-client",
                                fake=fake.url,
                                concurrency=CONCURRENCY,
                                forms=forms_file,
                            )
                        ]
                        _keep_best(runs, f"own_client_{tag}", _measure(fake, expected, own))
                    for workers in (1, 3) if latency else (1,):
                        reset(url)
                        fake.control(reset=True)
                        children = [
                            _child("worker", url=url, fake=fake.url, concurrency=CONCURRENCY)
                            for _ in range(workers)
                        ]
                        run = _measure(fake, expected, children)
                        left = states(url)
                        # Every row must have left the outbox as sent; anything else is lost too.
                        run.lost += sum(n for state, n in left.items() if state != "queued")
                        _keep_best(runs, f"pitwall_{workers}w_{tag}", run)
        forms_file.unlink(missing_ok=True)
    return runs


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    """Dispatch throughput on PostgreSQL (targets) and SQLite (alongside)."""
    count = QUICK_MESSAGES if quick else 5000
    results = []
    for backend in backends():
        runs = measure_backend(
            backend, count=count, pg_url=pg_url, sqlite_dir=sqlite_dir, latencies=(0.0, 50.0)
        )
        figures: dict[str, float | int | str] = {
            "messages": count,
            "concurrency": CONCURRENCY,
            "send_rate_per_second": BENCH_RATE,
        }
        for name, r in runs.items():
            figures[f"{name}_msg_s"] = round(r.rate, 1)
        # Beside the ceiling (not a target): Pitwall against the same loop on its own client.
        figures["pitwall_vs_own_client_0ms"] = round(
            ratio(runs["pitwall_1w_0ms"].rate, runs["own_client_0ms"].rate), 2
        )
        duplicates = sum(r.duplicates for r in runs.values())
        lost = sum(r.lost for r in runs.values())
        figures["duplicates"], figures["lost"] = duplicates, lost
        one, three = runs["pitwall_1w_50ms"].rate, runs["pitwall_3w_50ms"].rate
        targets = [
            Target(
                "pitwall/ceiling at 0 ms",
                ratio(runs["pitwall_1w_0ms"].rate, runs["ceiling_0ms"].rate),
                0.8,
                ">=",
                "x",
            ),
            Target(
                "pitwall/ceiling at 50 ms",
                ratio(one, runs["ceiling_50ms"].rate),
                0.8,
                ">=",
                "x",
            ),
            Target("one worker at 50 ms", one, 300, ">=", "msg/s"),
            Target("three workers / one", ratio(three, one), 2.5, ">=", "x"),
            Target("duplicates", duplicates, 0, "<=", "msgs"),
            Target("lost", lost, 0, "<=", "msgs"),
        ]
        if backend == "sqlite":
            # SQLite is one store on one box: reported alongside, its targets are the counts.
            targets = [t for t in targets if t.name in ("duplicates", "lost")]
        results.append(BenchResult(f"dispatch ({backend})", figures, targets))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("worker", "ceiling", "own-client"))
    parser.add_argument("--url")
    parser.add_argument("--fake", required=True)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--forms")
    args = parser.parse_args()
    mains = {"worker": worker_main, "ceiling": ceiling_main, "own-client": own_client_main}
    report = mains[args.mode](args)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
