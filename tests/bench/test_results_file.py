"""What a full `make bench` keeps: each run's table, the misses said with their unrounded
values, and an index of every kept run with each target's spread (never a best-of)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import results_file


def _report(started: float, commit: str, ratio: float, load: float) -> dict[str, Any]:
    return {
        "commit": commit,
        "date": f"2026-12-06T{int(started) % 24:02d}:00:00+00:00",
        "started": started,
        "total_seconds": 840.0,
        "machine": {
            "cpus": 2,
            "cpu_model": "AMD EPYC",
            "python": "3.11.7",
            "load_average_at_start": load,
            "load_average_at_end": load + 1,
        },
        "seconds": {"dispatch": 300.0},
        "load_average_before_after": {"dispatch": [load, load + 1]},
        "results": [
            {
                "name": "dispatch (postgresql)",
                "figures": {"yardstick_0ms": "own_client_loop", "yardstick_0ms_msg_s": 1702.4},
                "targets": [
                    {
                        "name": "1 worker / fastest plain loop, 0ms",
                        "value": ratio,
                        "bound": 0.8,
                        "op": ">=",
                        "unit": "x",
                        "ok": ratio >= 0.8,
                    }
                ],
                "ok": ratio >= 0.8,
            }
        ],
        "errors": {},
    }


def test_a_run_is_kept_with_its_misses_unrounded_and_listed_with_the_spread_of_all_runs(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    first, latest = _report(10, "aaaa111", 0.7995, 3.5), _report(11, "bbbb222", 0.83, 1.25)
    for report in (first, latest):
        output = results / results_file.path_for(report).name
        output.write_text(json.dumps(report))
        summary = results_file.write_summary(report, output).read_text()

    assert "bbbb222" in summary and "AMD EPYC" in summary and "load average 1.25" in summary
    first_summary = (results / results_file.path_for(first).name).with_suffix(".md").read_text()
    assert "0.7995 x | >= 0.8 | **missed**" in first_summary  # not rounded up to 0.80
    index = (tmp_path / "results.md").read_text()
    assert index.index("bbbb222") < index.index("aaaa111")  # the latest first
    assert "| 0.83 | 0.7995 - 0.83 (2 runs) | >= 0.8 |" in index
    assert "1 worker / fastest plain loop, 0ms (0.7995)" in index  # the miss, by run
