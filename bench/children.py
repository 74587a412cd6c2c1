"""The child side of the dispatch and end-to-end benchmarks: each its own process.

    python -m bench.children worker|requests|own-client --fake URL [--url DB] [--forms F]

A child builds everything it needs, prints "ready", waits for "go" on its standard
input, does its work and prints one JSON report: when it started and finished (after
the go), what it sent and its CPU (user + system, every thread) over that time; a
worker also its dispatcher thread's own CPU (the outbox's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import ROOT, open_database

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-token"
PUBLIC_URL = "http://127.0.0.1:8000"
CONCURRENCY = 32


def _ready_then_wait_for_go() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def _cpu() -> float:
    """This process's CPU seconds so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _kernel() -> tuple[float, int]:
    """(system CPU seconds, context switches) of this process so far, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend process on this machine serving the
    database of `url` (from /proc; empty for SQLite or a server on another machine).
    The server's shared background processes (WAL writer, checkpointer) are not in it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return {}
    tag, tick = f" {parsed.database} ".encode(), os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and tag in cmdline:
            found[int(entry)] = (int(stat[11]) + int(stat[12])) / tick
    return found


def worker_main(args: argparse.Namespace) -> dict[str, Any]:
    """What `pitwall worker` does on its dispatch tick, until nothing is due.

    Reports the process's CPU from the go signal to the end, and the dispatcher
    thread's own (this thread: the claims, the policies and the records; the sends
    run on the pool): the outbox's CPU. With `--db_cpu 1` (a worker alone on its
    database) also the CPU its PostgreSQL backends spent meanwhile."""
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
    started, cpu, own, kernel = time.time(), _cpu(), time.thread_time(), _kernel()
    server = database_cpu(args.url) if args.db_cpu else {}
    totals: dict[str, Any] = {"sent": 0, "claimed": 0, "lost_claims": 0, "runs": 0}
    while True:
        result = worker.dispatch_until_idle()
        totals["runs"] += 1
        for name in ("sent", "claimed", "lost_claims"):
            totals[name] += getattr(result, name)
        if result.claimed == 0:
            break
    totals["started"], totals["finished"] = started, time.time()
    totals["cpu"], totals["outbox_cpu"] = _cpu() - cpu, time.thread_time() - own
    totals["sys_cpu"], totals["switches"] = (b - a for a, b in zip(kernel, _kernel(), strict=True))
    if args.db_cpu and (now := database_cpu(args.url)):
        totals["db_cpu"] = sum(seconds - server.get(pid, 0.0) for pid, seconds in now.items())
    worker.close()
    return totals


def _plain_loop(
    args: argparse.Namespace, post: Callable[[str, dict[str, str]], None]
) -> dict[str, Any]:
    """Post every form with `post(url, form)` from a pool of `args.concurrency` threads,
    timed from the go signal: the plain loops that stand beside the worker. The
    collector is set as the worker's (`prepare_worker_gc`): the same interpreter."""
    from app.cli import prepare_worker_gc

    forms = json.loads(Path(args.forms).read_text())
    url = f"{args.fake}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    prepare_worker_gc()
    _ready_then_wait_for_go()
    started, cpu, kernel = time.time(), _cpu(), _kernel()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(pool.map(lambda form: post(url, form), forms))
    finished = time.time()
    sys_cpu, switches = (b - a for a, b in zip(kernel, _kernel(), strict=True))
    return {
        "sent": len(forms),
        "started": started,
        "finished": finished,
        "cpu": _cpu() - cpu,
        "sys_cpu": sys_cpu,
        "switches": switches,
    }


def requests_loop_main(args: argparse.Namespace) -> dict[str, Any]:
    """The same requests, posted by a stock `requests` Session per thread; no database."""
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
    shape), without the twilio library and without a database."""
    from integrations.twilio.gateway import ThreadLocalHttpClient

    client = ThreadLocalHttpClient(timeout=30)

    def post(url: str, form: dict[str, str]) -> None:
        body: dict[str, object] = dict(form)
        json.loads(client.request("POST", url, data=body, auth=(ACCOUNT_SID, AUTH_TOKEN)).text)

    try:
        return _plain_loop(args, post)
    finally:
        client.close()


def _child(mode: str, *, module: str = "bench.children", **options: Any) -> subprocess.Popen[str]:
    """`python -m <module> <mode> --<option> <value> ...`, ready to be told to go."""
    argv = [sys.executable, "-m", module, mode]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("worker", "requests", "own-client"))
    parser.add_argument("--url")
    parser.add_argument("--fake", required=True)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--forms")
    parser.add_argument("--db_cpu", type=int, default=0)
    args = parser.parse_args()
    mains = {"worker": worker_main, "requests": requests_loop_main, "own-client": own_client_main}
    report = mains[args.mode](args)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
