"""End to end, as a dealer first sees it: 1,000 new ready ROs on the REST bridge become
1,000 texts accepted by Twilio, beside a plain loop posting the same 1,000.

Pitwall: `pitwall worker --once` (the installed command, its own process) on a fresh
database with one rooftop reading a REST bridge fake that holds 1,000 ROs in status
READY, each with a new customer and phone; Twilio is the bench fake at 50 ms. Timed
from the bridge's first request (the first poll) to the fake's last accepted text;
the start-up (the process's launch to the first poll) is reported beside it, and the
poll's own duration (its health row): a first poll with the worker's real change hooks
(status texts planned, follow-ups, the watchdog), where bench/ingest.py polls with none.

The yardstick is the faster of the dispatch bench's two plain loops (a stock
`requests` Session, and Pitwall's own HTTP client) posting the same 1,000 texts with
the worker's send concurrency, timed from its go to its last answer. ROUNDS
rounds, the order alternating; medians with their spread.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.children import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, _child, run_children
from bench.common import ROOT, BenchResult, Target, backends, bench_database, long_run
from bench.twilio_fake import FakeTwilio

ROS = 1000
QUICK_ROS = 100
ROUNDS = 3
TRIMMED_ROUNDS = 2  # `make bench` (bench.common.long_run)
LATENCY_MS = 50.0
CONCURRENCY = 32  # the worker's send concurrency (Worker's default)
SENDER = "+14155550100"
BRIDGE_TOKEN = "bench-bridge-token"
LOOPS = ("requests", "own-client")


def bridge_records(count: int, *, round_no: int) -> list[dict[str, Any]]:
    """`count` ROs ready for pick-up, each with a new customer, phone and vehicle."""
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    for i in range(count):
        at = (now - timedelta(minutes=30) + timedelta(milliseconds=i)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        records.append(
            {
                "ro_number": f"E{round_no}-{i:05d}",
                "status": "READY",
                "opened_at": at,
                "updated_at": at,
                "promised_at": None,
                "closed_at": None,
                "advisor": {"id": "A7", "name": "Dana Ruiz"},
                "customer": {
                    "id": f"C-{round_no}-{i}",
                    "first_name": f"Sam{i}",
                    "last_name": "Lee",
                    "phones": [{"number": f"+1415{3_000_000 + i:07d}", "kind": "mobile"}],
                    "email": None,
                    "language": "en",
                    "sms_consent": True,
                    "marketing_consent": False,
                },
                "vehicle": {
                    "vin": f"JTMW1RFV5MD{i:06d}",
                    "year": 2021,
                    "make": "Toyota",
                    "model": "RAV4",
                    "mileage": 41230,
                },
                "lines": [],
            }
        )
    return records


class _Bridge:
    """The REST bridge fake in a thread, noting when it was first asked."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        from integrations.dms.fakes.rest_fake import RestBridgeFake
        from integrations.dms.fakes.server import FakeServer

        self.first_request = 0.0
        fake = RestBridgeFake(token=BRIDGE_TOKEN, page_size=ROS)
        fake.put(*records)
        inner = fake.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and not self.first_request:
                self.first_request = time.time()
            await inner(scope, receive, send)

        self.server = FakeServer(app)

    def __enter__(self) -> _Bridge:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return str(self.server.url)


def _dealer_toml(path: Path, bridge_url: str) -> Path:
    path.write_text(
        f"""[group]
name = "Bench Motors"
default_region = "US"

[[rooftop]]
slug = "bench-motors"
name = "Bench Motors"
timezone = "America/Los_Angeles"
sms_from = "{SENDER}"
send_rate_per_second = 1000
quiet_hours = "off"
language = "en"

[rooftop.dms]
kind = "rest"
base_url = "{bridge_url}"
token = "{BRIDGE_TOKEN}"
poll_seconds = 60

[rooftop.status_map]
"READY" = "ready_for_pickup"
"""
    )
    return path


def _pitwall(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "pitwall"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )


def pitwall_once(url: str, fake: FakeTwilio, count: int, round_no: int, tmp: Path) -> dict:
    """One `pitwall worker --once` over `count` new ready ROs: its timings in seconds."""
    records = bridge_records(count, round_no=round_no)
    with _Bridge(records) as bridge:
        env = {
            **os.environ,
            "PITWALL_DATABASE_URL": url,
            "PITWALL_PUBLIC_URL": PUBLIC_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PITWALL_TWILIO_API_URL": fake.url,
            "PITWALL_LOG_LEVEL": "WARNING",
        }
        _pitwall(env, "config", "load", str(_dealer_toml(tmp / "e2e-dealer.toml", bridge.url)))
        fake.control(latency_ms=LATENCY_MS, reset=True)
        launched = time.time()
        done = _pitwall(env, "worker", "--once")
        exited = time.time()
        stats = fake.stats()
    first_poll_ms = _last_poll_ms(url)
    if stats["distinct"] != count or stats["duplicates"]:
        raise RuntimeError(
            f"e2e: {stats['distinct']} of {count} texts reached Twilio,"
            f" {stats['duplicates']} twice; the worker said: {done.stdout.strip()}"
        )
    return {
        "startup": bridge.first_request - launched,
        "poll_to_last_accept": stats["last_accept"] - bridge.first_request,
        "launch_to_exit": exited - launched,
        "first_poll": first_poll_ms / 1000,
    }


def _last_poll_ms(url: str) -> int:
    """How long the poll took by its own health row (`dms_poll_state.last_duration_ms`)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT max(last_duration_ms) FROM dms_poll_state")).scalar_one()
            )
    finally:
        engine.dispose()


def plain_loop(mode: str, fake: FakeTwilio, count: int, tmp: Path) -> float:
    """Seconds for a plain loop to post `count` texts (go to last answer)."""
    forms = [
        {
            "To": f"+1415{3_000_000 + i:07d}",
            "From": SENDER,
            "Body": f"Sam{i}, your car is ready for pick-up at Bench Motors.",
            "StatusCallback": PUBLIC_URL + "/webhooks/twilio/status",
        }
        for i in range(count)
    ]
    forms_file = tmp / "e2e-forms.json"
    forms_file.write_text(json.dumps(forms))
    fake.control(latency_ms=LATENCY_MS, reset=True)
    (report,) = run_children(
        [_child(mode, fake=fake.url, concurrency=CONCURRENCY, forms=forms_file)]
    )
    return float(report["finished"] - report["started"])


def measure(backend: str, *, pg_url: str, sqlite_dir: Path, count: int, rounds: int) -> dict:
    runs: dict[str, list[float]] = {}
    with FakeTwilio() as fake:
        for round_no in range(rounds):

            def pitwall(round_no: int = round_no) -> None:
                with bench_database(
                    backend, pg_url=pg_url, sqlite_dir=sqlite_dir, name="e2e"
                ) as url:
                    timings = pitwall_once(url, fake, count, round_no, sqlite_dir)
                for name, seconds in timings.items():
                    runs.setdefault(f"pitwall_{name}", []).append(seconds)

            def loops() -> None:
                for mode in LOOPS:
                    runs.setdefault(f"{mode}_loop", []).append(
                        plain_loop(mode, fake, count, sqlite_dir)
                    )

            steps = [pitwall, loops] if round_no % 2 == 0 else [loops, pitwall]
            for step in steps:
                step()
    return runs


def run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]:
    count = QUICK_ROS if quick else ROS
    results = []
    for backend in backends():
        runs = measure(
            backend,
            pg_url=pg_url,
            sqlite_dir=sqlite_dir,
            count=count,
            rounds=1 if quick else ROUNDS if long_run() else TRIMMED_ROUNDS,
        )
        median = {name: statistics.median(values) for name, values in runs.items()}
        yardstick = min(LOOPS, key=lambda mode: median[f"{mode}_loop"])
        loop_seconds = median[f"{yardstick}_loop"]
        figures: dict[str, float | int | str] = {
            "ros": count,
            "rounds": len(runs["pitwall_startup"]),
            "twilio_latency_ms": LATENCY_MS,
            "concurrency": CONCURRENCY,
            "yardstick": f"{yardstick} loop",
        }
        for name, values in runs.items():
            figures[f"{name}_s"] = round(median[name], 3)
            figures[f"{name}_s_spread"] = f"{min(values):.3f}-{max(values):.3f}"
        figures["first_poll_ms_per_ro"] = round(median["pitwall_first_poll"] * 1000 / count, 3)
        ratios = [loop_seconds / s for s in runs["pitwall_poll_to_last_accept"]]
        figures["pitwall_vs_loop_spread"] = f"{min(ratios):.3f}-{max(ratios):.3f}"
        figures["launch_to_last_accept_vs_loop"] = round(
            loop_seconds / (median["pitwall_startup"] + median["pitwall_poll_to_last_accept"]), 3
        )
        targets = [
            Target(
                "plain loop / first poll to last accept",
                loop_seconds / median["pitwall_poll_to_last_accept"],
                0.6,
                ">=",
                "x",
            )
        ]
        results.append(BenchResult(f"end to end: {count} new ROs ({backend})", figures, targets))
    return results
