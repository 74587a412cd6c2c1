"""`make bench`: run every benchmark in one process-run, print one table, write the JSON.

    python -m bench [--quick] [--only NAME] [--pg-url URL] [--output PATH]

A full run (no --quick, no --only) writes its table to bench/results/<date>-<commit>.json
and a markdown summary beside it (bench/results.md lists every run): the commit, the
date, the machine (cores, CPU model) and the load average before and after each
benchmark, every yardstick's own figure and every target judged on its unrounded value.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import results_file
from bench.common import DEFAULT_PG_URL, ROOT, BenchResult

MODULES = ("dispatch", "e2e", "ingest", "webhooks", "memory", "peer", "scale")


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
    parser.add_argument(
        "--long",
        action="store_true",
        help="the long sizes (600 s soak, 100,000 sends, 5,000 texts a dispatch run, 60 s of"
        " webhooks); without it a full run keeps every benchmark and round, trimmed to ~15 min",
    )
    parser.add_argument("--only", choices=MODULES, action="append", help="run just these")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("PITWALL_BENCH_PG_URL", DEFAULT_PG_URL),
        help="a PostgreSQL server the bench may create and drop pitwall_bench_* databases on",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the JSON (default: bench/results/<date>-<commit>.json for a"
        " full run, bench-results.json otherwise)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        help="length of the memory soak (default 600 s, 30 s with --quick)",
    )
    args = parser.parse_args(argv)
    if args.long:
        os.environ["PITWALL_BENCH_LONG"] = "1"
    if args.soak_seconds is not None:
        os.environ["PITWALL_BENCH_SOAK_SECONDS"] = str(args.soak_seconds)

    names = [n for n in MODULES if not args.only or n in args.only]
    started, load_at_start = time.time(), os.getloadavg()[0]
    results: list[BenchResult] = []
    skipped: list[str] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    loads: dict[str, list[float]] = {}
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
            print(f"\n-- running {name} (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
            began, load_before = time.perf_counter(), os.getloadavg()
            try:
                produced = module.run(quick=args.quick, pg_url=args.pg_url, sqlite_dir=Path(tmp))
            except Exception as exc:
                traceback.print_exc()
                first_line = (str(exc).splitlines() or [""])[0][:160]
                errors[name] = f"{type(exc).__name__}: {first_line}"
                continue
            finally:
                timings[name] = round(time.perf_counter() - began, 1)
                loads[name] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
            for result in produced:
                print_result(result)
            results.extend(produced)

    print_summary(results, skipped, errors)
    full = not args.quick and not args.only
    report: dict[str, Any] = {
        "quick": args.quick,
        "full": full,
        "long": args.long,
        "commit": results_file.commit(),
        "date": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "started": started,
        "total_seconds": round(time.time() - started, 1),
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "cpu_model": results_file.cpu_model(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "seconds": timings,
        "load_average_before_after": loads,
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
    output = args.output
    if output is None:
        output = results_file.path_for(report) if full else ROOT / "bench-results.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"figures written to {output}")
    if full:
        summary = results_file.write_summary(report, output)
        print(f"summary written to {summary} (and bench/results.md)")
    return 0 if not errors and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
