"""Dispatch: Pitwall's worker beside the fastest plain loop posting the same requests.

The yardstick is the faster (by its median rate) of two plain loops, both run in
every round: a stock `requests` Session per thread, and the same loop on Pitwall's
own HTTP client (the gateway's ThreadLocalHttpClient: no twilio library, no
database). Both post the same messages (To, From, Body, StatusCallback) to the same
Twilio fake (bench/twilio_fake.py, its own process) with the same 32 threads, each
in its own process started before timing begins, with the collector set as the
worker sets it (`prepare_worker_gc`). Every side runs ROUNDS times at 50 ms and
ZERO_MS_ROUNDS at 0 ms, the order of the sides reversed every other round; the figures
are medians with their spread, and the worker against the yardstick is the median of
each round's own ratio (the ratio of the medians beside it).

Beside the rates, every child reports its CPU (user + system, all threads) from
the go signal to its end: CPU seconds per 1,000 texts for one worker and for each
of three, beside the yardstick's per 1,000 requests; and the worker's dispatcher
thread (claims, policies, records: the outbox's own CPU) per text.

Duplicates and lost messages are counted from what the fake received (over every
run). The two rooftops send through four numbers each (their pools) with
`send_rate_per_second = 1000` (a short code or Messaging Service): pacing, 8,000/s
in all, is above what the yardstick reaches, so it is not what limits the figures.

`python -m bench.children worker|requests|own-client ...` is the child side of a run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import insert, select, text, update

from bench.children import CONCURRENCY, PUBLIC_URL, _child, run_children
from bench.common import (
    BenchResult,
    Target,
    backends,
    bench_database,
    load_sample_dealer,
    long_run,
    open_database,
    ratio,
    settle,
)
from bench.twilio_fake import FakeTwilio

BATCH_SIZE = 100
ROUNDS = 3  # each side's median over this many rounds, the order alternating
# At 0 ms a run lasts a few seconds and the shared machine's pace drifts from one round to
# the next by a third (the loop 1,510-2,123 texts/s in one run): more rounds there, and
# the verdict is the median of each round's own ratio (worker and loop run side by side
# in time), the ratio of the medians reported beside it.
ZERO_MS_ROUNDS = 7
MESSAGES = 10000
# `make bench` (bench.common.long_run). Each run is a new worker process, which pays once
# what a running worker paid long ago (each statement's first compile, its database
# connections, SQLite's page cache, the zone list): 20-70 ms of the outbox's CPU, which
# over 2,000 texts read as 10-35 us a text of what is meant as a running worker's cost.
TRIMMED_MESSAGES = 5000
QUICK_MESSAGES = 500
BENCH_RATE = 1000.0  # messages/s per sender: the config's maximum (short code / service)
# Pacing is per sender number: with 2 rooftops x 4 numbers x 1,000/s the cap is 8,000/s,
# above the yardstick's rate (about 2,000-2,500/s at 0 ms here). With one number each the
# cap was 2,000/s and it, not the outbox, bounded the 0 ms ratio.
SENDERS_PER_ROOFTOP = 4


# --- seeding ---------------------------------------------------------------------------


def seed(url: str, count: int) -> list[dict[str, str]]:
    """The sample dealer, `count` customers with one phone each, one due status text each.

    Returns the Twilio form each message becomes, for the plain loops to post.
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
        # Each rooftop sends from its number and SENDERS_PER_ROOFTOP - 1 more of its pool (a
        # Messaging Service's numbers): the pacing cap is then above the yardstick's rate.
        senders = [
            (r.id, r.sms_from if k == 0 else f"+1415555{150 + 10 * r.id + k:04d}")
            for r in rooftops
            for k in range(SENDERS_PER_ROOFTOP)
        ]
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
    settle(database.engine)  # vacuumed and analysed: autovacuum's round not mid-run
    database.engine.dispose()
    return forms


def reset(url: str) -> None:
    """Every bench message due again, as if never sent; then the database settled.

    The reset rewrites every row of the outbox (on PostgreSQL a dead version of each,
    beside the two of the last run's claim and record): not the worker's doing, so the
    outbox is vacuumed and the log checkpointed (`settle`) before the next timed run.
    """
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
    settle(database.engine, OutboundMessage.__tablename__)
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


# --- one measured run ------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one side: its rate, its CPU per text, what the fake counted."""

    rate: float
    seconds: float
    duplicates: int
    lost: int
    cpu_us: float  # CPU per text, every process of the side together (microseconds)
    outbox_us: float = 0.0  # Pitwall only: the dispatcher threads' CPU per text
    each_cpu_us: tuple[float, ...] = ()  # Pitwall only: each worker's CPU per text it sent
    db_us: float | None = None  # one worker on PostgreSQL: its server backends' CPU per text
    sys_us: float = 0.0  # of cpu_us, the kernel's (system CPU) per text
    switches: float = 0.0  # context switches per text, every process of the side


def _measure(fake: FakeTwilio, expected: set[str], children: list[subprocess.Popen[str]]) -> Run:
    reports = run_children(children)
    seconds = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    bodies = fake.bodies()
    duplicates = len(bodies) - len(set(bodies))
    lost = len(expected - set(bodies))
    texts = len(expected)
    return Run(
        rate=texts / seconds,
        seconds=seconds,
        duplicates=duplicates,
        lost=lost,
        cpu_us=sum(r["cpu"] for r in reports) / texts * 1e6,
        outbox_us=sum(r.get("outbox_cpu", 0.0) for r in reports) / texts * 1e6,
        each_cpu_us=tuple(r["cpu"] / max(1, r["sent"]) * 1e6 for r in reports),
        db_us=reports[0]["db_cpu"] / texts * 1e6 if "db_cpu" in reports[0] else None,
        sys_us=sum(r["sys_cpu"] for r in reports) / texts * 1e6,
        switches=sum(r["switches"] for r in reports) / texts,
    )


@dataclass
class Side:
    """Every run of one side (a loop, or n workers at a latency) over the rounds."""

    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(run, attribute) for run in self.runs))

    def spread(self, attribute: str) -> str:
        values = [getattr(run, attribute) for run in self.runs]
        return f"{min(values):.1f}-{max(values):.1f}"

    @property
    def duplicates(self) -> int:
        return sum(run.duplicates for run in self.runs)

    @property
    def lost(self) -> int:
        return sum(run.lost for run in self.runs)


LOOPS = ("requests_loop", "own_client_loop")


def measure_backend(
    backend: str,
    *,
    count: int,
    pg_url: str,
    sqlite_dir: Path,
    rounds: dict[float, int],
) -> dict[str, Side]:
    """Both plain loops and Pitwall (1 worker, and 3 workers) at each latency on one
    backend, `rounds[latency]` times, the order of the sides alternating from round to
    round."""
    sides: dict[str, Side] = {}
    with bench_database(backend, pg_url=pg_url, sqlite_dir=sqlite_dir, name="dispatch") as url:
        forms = seed(url, count)
        expected = {f["Body"] for f in forms}
        forms_file = sqlite_dir / "dispatch_forms.json"
        forms_file.write_text(json.dumps(forms))

        def loop(name: str, latency: float) -> None:
            fake.control(latency_ms=latency, reset=True)
            mode = name.removesuffix("_loop").replace("_", "-")
            child = _child(mode, fake=fake.url, concurrency=CONCURRENCY, forms=forms_file)
            run = _measure(fake, expected, [child])
            sides.setdefault(f"{name}_{latency:g}ms", Side()).runs.append(run)

        def workers(n: int, latency: float) -> None:
            reset(url)
            fake.control(latency_ms=latency, reset=True)
            # Alone on the database, a worker also reports its PostgreSQL backends' CPU.
            children = [
                _child(
                    "worker", url=url, fake=fake.url, concurrency=CONCURRENCY, db_cpu=int(n == 1)
                )
                for _ in range(n)
            ]
            run = _measure(fake, expected, children)
            # Every row must have left the outbox as sent; anything else is lost too.
            run.lost += sum(k for state, k in states(url).items() if state != "queued")
            sides.setdefault(f"pitwall_{n}w_{latency:g}ms", Side()).runs.append(run)

        with FakeTwilio() as fake:
            for round_no in range(max(rounds.values())):
                for latency in (latency for latency, n in rounds.items() if round_no < n):
                    steps: list[Callable[[], None]] = [
                        *(partial(loop, name, latency) for name in LOOPS),
                        partial(workers, 1, latency),
                    ]
                    if latency:  # scale-out is measured where sends wait on Twilio
                        steps.append(partial(workers, 3, latency))
                    for step in steps if round_no % 2 == 0 else reversed(steps):
                        step()
        forms_file.unlink(missing_ok=True)
    return sides


def _yardstick(sides: dict[str, Side], tag: str, attribute: str = "rate") -> tuple[str, float]:
    """The faster plain loop at `tag` (by its median): (its name, its median `attribute`)."""
    name = max(LOOPS, key=lambda loop: sides[f"{loop}_{tag}"].median("rate"))
    return name, sides[f"{name}_{tag}"].median(attribute)


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    """Dispatch throughput and CPU per text on PostgreSQL and SQLite, beside the
    faster of two plain loops (a stock `requests` Session and Pitwall's own client)."""
    count = QUICK_MESSAGES if quick else MESSAGES if long_run() else TRIMMED_MESSAGES
    results = []
    for backend in backends():
        sides = measure_backend(
            backend,
            count=count,
            pg_url=pg_url,
            sqlite_dir=sqlite_dir,
            rounds={0.0: 1, 50.0: 1} if quick else {0.0: ZERO_MS_ROUNDS, 50.0: ROUNDS},
        )
        figures: dict[str, float | int | str] = {
            "messages": count,
            "concurrency": CONCURRENCY,
            "rounds_0ms": len(sides["pitwall_1w_0ms"].runs),
            "rounds_50ms": len(sides["pitwall_1w_50ms"].runs),
            "send_rate_per_second": BENCH_RATE,
            "senders": 2 * SENDERS_PER_ROOFTOP,
        }
        for name, side in sides.items():
            figures[f"{name}_msg_s"] = round(side.median("rate"), 1)
            figures[f"{name}_msg_s_spread"] = side.spread("rate")
            figures[f"{name}_cpu_s_per_1000"] = round(side.median("cpu_us") / 1000, 3)
        targets = []
        for tag in ("0ms", "50ms"):
            loop, yard = _yardstick(sides, tag)
            figures[f"yardstick_{tag}"] = loop
            figures[f"yardstick_{tag}_msg_s"] = round(yard, 1)
            # Where a text's CPU goes beside the interpreter: the kernel's share (sockets,
            # and the threads' hand-offs of the GIL, which the switches count).
            for side_name in (f"{loop}_{tag}", f"pitwall_1w_{tag}"):
                side = sides[side_name]
                figures[f"{side_name}_sys_us_per_text"] = round(side.median("sys_us"), 1)
                figures[f"{side_name}_switches_per_text"] = round(side.median("switches"), 1)
            pitwall = sides[f"pitwall_1w_{tag}"]
            # Each round's worker beside that round's yardstick run: the pair ran minutes
            # apart at most, so the machine's drift between rounds cancels out.
            paired = [
                worker.rate / plain.rate
                for worker, plain in zip(pitwall.runs, sides[f"{loop}_{tag}"].runs, strict=True)
            ]
            figures[f"pitwall_1w_vs_yardstick_{tag}_spread"] = (
                f"{min(paired):.3f}-{max(paired):.3f}"
            )
            figures[f"pitwall_1w_vs_yardstick_{tag}_of_medians"] = round(
                pitwall.median("rate") / yard, 3
            )
            targets.append(
                Target(
                    f"1 worker / fastest plain loop, {tag}",
                    statistics.median(paired),
                    0.8,
                    ">=",
                    "x",
                )
            )
        one, three = sides["pitwall_1w_50ms"], sides["pitwall_3w_50ms"]
        _, loop_cpu = _yardstick(sides, "50ms", "cpu_us")
        figures["yardstick_50ms_cpu_s_per_1000"] = round(loop_cpu / 1000, 3)
        each = sorted(us for run in three.runs for us in run.each_cpu_us)
        figures["pitwall_3w_50ms_each_cpu_s_per_1000"] = " ".join(
            f"{us / 1000:.3f}" for us in three.runs[-1].each_cpu_us
        )
        figures["pitwall_3w_50ms_each_cpu_s_per_1000_spread"] = (
            f"{each[0] / 1000:.3f}-{each[-1] / 1000:.3f}"
        )
        figures["three_vs_one_50ms"] = round(ratio(three.median("rate"), one.median("rate")), 3)
        for tag in ("0ms", "50ms"):
            side = sides[f"pitwall_1w_{tag}"]
            figures[f"pitwall_1w_{tag}_outbox_us_per_text"] = round(side.median("outbox_us"), 1)
            figures[f"pitwall_1w_{tag}_outbox_us_spread"] = side.spread("outbox_us")
            if all(run.db_us is not None for run in side.runs):
                figures[f"pitwall_1w_{tag}_db_server_us_per_text"] = round(side.median("db_us"), 1)
                figures[f"pitwall_1w_{tag}_db_server_us_spread"] = side.spread("db_us")
        duplicates = sum(side.duplicates for side in sides.values())
        lost = sum(side.lost for side in sides.values())
        figures["duplicates"], figures["lost"] = duplicates, lost
        targets += [
            Target(
                "outbox CPU per text, 1 worker, 50 ms", one.median("outbox_us"), 100, "<=", "us"
            ),
            Target("CPU/text, 1 worker / plain loop, 50 ms", one.median("cpu_us") / loop_cpu, 1.25),
            Target(
                "CPU/text, 3 workers / plain loop, 50 ms", three.median("cpu_us") / loop_cpu, 1.25
            ),
            Target("duplicates", duplicates, 0, "<=", "msgs"),
            Target("lost", lost, 0, "<=", "msgs"),
        ]
        results.append(BenchResult(f"dispatch ({backend})", figures, targets))
    return results
