"""`make bench`: run every benchmark in one process-run, print one table, write the JSON.

    python -m bench [--quick] [--only NAME] [--pg-url URL] [--output PATH]

Each module `bench/<name>.py` exposes `run(*, quick, pg_url, sqlite_dir) -> list[BenchResult]`;
a missing module is skipped with a note. Every target is a ratio or bound measured
side by side in this run. Exit status 1 when a target misses or a benchmark fails.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_PG_URL, ROOT, BenchResult

MODULES = ("dispatch", "ingest", "webhooks", "memory", "peer", "scale")


def _value(value: float | int | str) -> str:
    if isinstance(value, float):
        if abs(value) < 10:  # ratios: a third decimal, so that 2.495 does not read as 2.50
            return f"{value:,.3f}"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_result(result: BenchResult) -> None:
    print(f"\n== {result.name}")
    for target in result.targets:
        verdict = "ok" if target.ok else "MISS"
        print(
            f"  {target.name:<42} {_value(target.value):>10} {target.unit:<6}"
            f" {target.op} {_value(target.bound):<8} {verdict}"
        )
    figures = "  ".join(f"{k}={_value(v)}" for k, v in result.figures.items())
    if figures:
        print(f"  figures: {figures}")
    sys.stdout.flush()


def print_summary(results: list[BenchResult], skipped: list[str], errors: dict[str, str]) -> None:
    print("\n" + "=" * 108)
    print(f"{'benchmark':<36} {'target':<42} {'measured':>10} {'':<6} {'bound':<11} result")
    print("-" * 108)
    for result in results:
        for target in result.targets:
            print(
                f"{result.name:<36} {target.name:<42} {_value(target.value):>10}"
                f" {target.unit:<6} {target.op} {_value(target.bound):<8} "
                f"{'ok' if target.ok else 'MISS'}"
            )
    for name in skipped:
        print(f"{name:<36} skipped: bench/{name}.py is not there yet")
    for name, error in errors.items():
        print(f"{name:<36} FAILED: {error}")
    print("=" * 108)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", choices=MODULES, action="append", help="run just these")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("PITWALL_BENCH_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL server the bench may create and drop pitwall_bench_* databases on",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    parser.add_argument(
        "--soak-seconds",
        type=float,
        help="length of the memory soak (default 600 s, 30 s with --quick)",
    )
    args = parser.parse_args(argv)
    if args.soak_seconds is not None:
        os.environ["PITWALL_BENCH_SOAK_SECONDS"] = str(args.soak_seconds)

    names = [n for n in MODULES if not args.only or n in args.only]
    started, load_at_start = time.time(), os.getloadavg()[0]
    results: list[BenchResult] = []
    skipped: list[str] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    print(
        f"pitwall bench ({'quick' if args.quick else 'full'}) on {platform.node()}: "
        f"{os.cpu_count()} cpus, load average {load_at_start:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="pitwall-bench-") as tmp:
        for name in names:
            try:
                module = importlib.import_module(f"bench.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"bench.{name}":
                    raise
                skipped.append(name)
                print(f"\n== {name}: skipped (bench/{name}.py is not there yet)", flush=True)
                continue
            print(f"\n-- running {name} ...", flush=True)
            began = time.perf_counter()
            try:
                produced = module.run(quick=args.quick, pg_url=args.pg_url, sqlite_dir=Path(tmp))
            except Exception as exc:
                traceback.print_exc()
                first_line = (str(exc).splitlines() or [""])[0][:160]
                errors[name] = f"{type(exc).__name__}: {first_line}"
                continue
            finally:
                timings[name] = round(time.perf_counter() - began, 1)
            for result in produced:
                print_result(result)
            results.extend(produced)

    print_summary(results, skipped, errors)
    report: dict[str, Any] = {
        "quick": args.quick,
        "started": started,
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "seconds": timings,
        "results": [
            {
                **asdict(result),
                "targets": [{**asdict(t), "ok": t.ok} for t in result.targets],
                "ok": result.ok,
            }
            for result in results
        ],
        "skipped": skipped,
        "errors": errors,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"figures written to {args.output}")
    return 0 if not errors and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
