"""The results a full `make bench` keeps in the repository: bench/results/.

Each full run writes `<date>-<commit>.json` (everything the run measured) and a
markdown summary beside it, then rebuilds `bench/results.md`: every kept run, the
latest first, each target's value beside the spread of all runs of it. Nothing
here picks a best run: the docs quote the latest and list the others.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bench.common import ROOT

RESULTS = ROOT / "bench" / "results"  # its index: bench/results.md


def commit() -> str:
    """The short commit the run measured, with `+dirty` when the code differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "integrations", "bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if changed else "")


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it ("unknown" off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def path_for(report: dict[str, Any]) -> Path:
    stamp = report["date"].replace(":", "")[:15]  # 2026-12-06T1605
    return RESULTS / f"{stamp}-{report['commit']}.json"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def summary(report: dict[str, Any]) -> str:
    """One run as markdown: the machine, then every target (unrounded) and every figure."""
    machine = report["machine"]
    lines = [
        f"# `make bench` of {report['commit']} on {report['date']}",
        "",
        f"{machine['cpus']} cores ({machine['cpu_model']}), Python {machine['python']}, "
        f"load average {machine['load_average_at_start']:.2f} at the start and "
        f"{machine['load_average_at_end']:.2f} at the end; "
        f"{report.get('total_seconds', 0):.0f} s in all.",
        "",
        "| benchmark | target | measured | bound | |",
        "|---|---|---|---|---|",
    ]
    for result in report["results"]:
        for target in result["targets"]:
            verdict = "ok" if target["ok"] else "**missed**"
            lines.append(
                f"| {result['name']} | {target['name']} | {_value(target['value'])} "
                f"{target['unit']} | {target['op']} {_value(target['bound'])} | {verdict} |"
            )
    for name, error in report.get("errors", {}).items():
        lines.append(f"| {name} | failed | {error} | | **failed** |")
    lines += ["", "Seconds and load average (before, after) per benchmark:", ""]
    for name, seconds in report.get("seconds", {}).items():
        load = report.get("load_average_before_after", {}).get(name, ["?", "?"])
        lines.append(f"- {name}: {seconds} s, load {load[0]} -> {load[1]}")
    for result in report["results"]:
        lines += ["", f"## {result['name']}", ""]
        lines += [f"- {key}: {_value(value)}" for key, value in result["figures"].items()]
    return "\n".join(lines) + "\n"


def _runs(results: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(results.glob("*.json")):
        report = json.loads(path.read_text())
        report["_file"] = path.name
        runs.append(report)
    return sorted(runs, key=lambda r: r["started"], reverse=True)


def index(results: Path = RESULTS) -> str:
    """Every kept full run, the latest first; for each target its values over all runs."""
    runs = _runs(results)
    lines = [
        "# `make bench` results, the latest first",
        "",
        "Written by `make bench` (bench/results_file.py). The docs quote the latest run;",
        "the spread is the lowest and highest value of every kept run, never a best-of.",
        "",
        "| run | commit | date | load at start | targets missed |",
        "|---|---|---|---|---|",
    ]
    values: dict[tuple[str, str], list[float]] = {}
    for report in runs:
        missed = [
            f"{result['name']}: {target['name']} ({_value(target['value'])})"
            for result in report["results"]
            for target in result["targets"]
            if not target["ok"]
        ]
        for result in report["results"]:
            for target in result["targets"]:
                values.setdefault((result["name"], target["name"]), []).append(target["value"])
        md = report["_file"].removesuffix(".json") + ".md"
        lines.append(
            f"| [{md}]({results.name}/{md}) | {report['commit']} | {report['date']} | "
            f"{report['machine']['load_average_at_start']:.2f} | "
            f"{'; '.join(missed) or 'none'} |"
        )
    if runs:
        latest = {
            (result["name"], target["name"]): target
            for result in runs[0]["results"]
            for target in result["targets"]
        }
        lines += [
            "",
            "| benchmark | target | latest | spread over all runs | bound |",
            "|---|---|---|---|---|",
        ]
        for (bench, name), seen in values.items():
            target = latest.get((bench, name))
            latest_value = _value(target["value"]) if target else "not in the latest run"
            bound = f"{target['op']} {_value(target['bound'])}" if target else ""
            lines.append(
                f"| {bench} | {name} | {latest_value} | "
                f"{_value(min(seen))} - {_value(max(seen))} ({len(seen)} runs) | {bound} |"
            )
    return "\n".join(lines) + "\n"


def write_summary(report: dict[str, Any], output: Path) -> Path:
    """The run's markdown beside its JSON, and the index of its folder's runs rebuilt
    beside the folder (bench/results.md for bench/results/); the run's markdown path."""
    path = output.with_suffix(".md")
    path.write_text(summary(report))
    output.parent.with_suffix(".md").write_text(index(output.parent))
    return path
