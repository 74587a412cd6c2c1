"""What every benchmark module returns, and small helpers they share.

Contract: each module ``bench/<name>.py`` exposes
``run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]``.
Targets are ratios or bounds measured in the same run on the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

Figure = float | int | str


@dataclass(frozen=True)
class Target:
    """One pass/fail check: ``value op bound`` (e.g. a ratio >= 0.8, an RSS <= 150 MB)."""

    name: str
    value: float
    bound: float
    op: Literal[">=", "<="]
    unit: str = ""

    @property
    def ok(self) -> bool:
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound


@dataclass
class BenchResult:
    """One benchmark's measured figures (for the table and JSON) and its targets."""

    name: str
    figures: dict[str, Figure] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(target.ok for target in self.targets)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Measure wall time of a block: ``with stopwatch() as elapsed: ...; elapsed[0]`` (seconds)."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started


def ratio(numerator: float, denominator: float) -> float:
    """A ratio that is 0.0 instead of a ZeroDivisionError when the denominator is 0."""
    return numerator / denominator if denominator else 0.0
