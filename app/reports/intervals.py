"""95% intervals for "followed minus held out": Wilson/Newcombe for lines, a bootstrap for dollars.

The unit of the draw is the plan (one RO's declined lines), and a plan's lines tend to
come back together, so both intervals count plans, not lines, as the independent units.

Lines: each group's recovery rate is a proportion. Newcombe's hybrid score interval
(method 10 of Newcombe 1998) combines the two groups' Wilson score intervals; it keeps
its coverage with small counts and rates near 0 where the textbook Wald interval does
not. Each group's counts are first divided by its design effect (Rao & Scott 1992: the
between-plan variance of the rate over the variance it would have if lines were
independent, never below 1), so plans whose lines all come back at once do not pass
for more evidence than they are. With several strata (rooftops, holdout percents) the
weighted sum of differences gets the MOVER form of Zou & Donner (2008), which is
Newcombe's for one stratum.

Dollars: recovered cents are a few large amounts among many zeros, far from normal,
so the share of declined dollars recovered gets a percentile bootstrap: plans are
resampled with replacement within each group and stratum, with a fixed seed, so the
same plans always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
RESAMPLES = 2000
SEED = 29
_CELLS_PER_BATCH = 2_000_000  # resampled plan indices held in memory at once


def wilson(successes: float, trials: float) -> tuple[float, float]:
    """Wilson score 95% interval of successes/trials ((0, 1) when there are no trials).

    Counts may be fractional: effective counts after a design effect.
    """
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + Z95**2 / trials
    centre = (p + Z95**2 / (2 * trials)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Plans:
    """One group of one stratum, plan by plan: lines and cents declined, and recovered."""

    lines: Sequence[int]
    recovered_lines: Sequence[int]
    declined_cents: Sequence[int]
    recovered_cents: Sequence[int]


def design_effect(plans: Plans) -> float:
    """Variance of the line recovery rate between plans over the binomial one (at least 1)."""
    trials = sum(plans.lines)
    successes = sum(plans.recovered_lines)
    if trials == 0 or successes in (0, trials):
        return 1.0
    p = successes / trials
    between = sum((y - p * m) ** 2 for y, m in zip(plans.recovered_lines, plans.lines, strict=True))
    return max(1.0, between / (trials * p * (1 - p)))


def rate_difference(strata: Sequence[tuple[Plans, Plans]]) -> tuple[float, float, float]:
    """Followed minus held-out line recovery rate and its 95% interval (Newcombe / MOVER).

    Each stratum is (followed, held out), both with lines. Strata are weighted by their
    followed lines, so the figure is the effect on the followed plans.
    """
    total = sum(sum(followed.lines) for followed, _ in strata)
    estimate, lower_sq, upper_sq = 0.0, 0.0, 0.0
    for followed, held in strata:
        weight = sum(followed.lines) / total
        p1, (l1, u1) = _rate_and_interval(followed)
        p0, (l0, u0) = _rate_and_interval(held)
        estimate += weight * (p1 - p0)
        lower_sq += weight**2 * ((p1 - l1) ** 2 + (u0 - p0) ** 2)
        upper_sq += weight**2 * ((u1 - p1) ** 2 + (p0 - l0) ** 2)
    low = max(-1.0, estimate - math.sqrt(lower_sq))
    high = min(1.0, estimate + math.sqrt(upper_sq))
    return estimate, low, high


def _rate_and_interval(plans: Plans) -> tuple[float, tuple[float, float]]:
    successes, trials = sum(plans.recovered_lines), sum(plans.lines)
    effect = design_effect(plans)
    return successes / trials, wilson(successes / effect, trials / effect)


def dollar_rate_difference(
    strata: Sequence[tuple[Plans, Plans]], *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float, float]:
    """Followed minus held-out share of declined dollars recovered, and its bootstrap 95% interval.

    Each stratum is (followed, held out), both with declined dollars. The estimate is
    sum(R1 - D1 * R0 / D0) / sum(D1): what the followed plans recovered beyond what they
    would have at the held-out plans' rate of their own stratum, per followed dollar.
    """
    rng = np.random.default_rng(seed)
    observed = _statistic([(_sums(f), _sums(h)) for f, h in strata])
    samples = [(_resampled(f, rng, resamples), _resampled(h, rng, resamples)) for f, h in strata]
    baseline = [_share(*_sums(h)) for _, h in strata]
    extra = np.zeros(resamples)
    followed_dollars = np.zeros(resamples)
    for ((d1, r1), (d0, r0)), fallback in zip(samples, baseline, strict=True):
        # A resample of only zero-dollar plans has no rate; it keeps the observed one.
        share0 = np.divide(r0, d0, out=np.full(resamples, fallback), where=d0 > 0)
        extra += r1 - d1 * share0
        followed_dollars += d1
    boot = np.divide(extra, followed_dollars, out=np.zeros(resamples), where=followed_dollars > 0)
    low, high = np.percentile(boot, [2.5, 97.5])
    return observed, float(low), float(high)


def _sums(plans: Plans) -> tuple[float, float]:
    return float(sum(plans.declined_cents)), float(sum(plans.recovered_cents))


def _share(declined: float, recovered: float) -> float:
    return recovered / declined if declined else 0.0


def _statistic(strata: Sequence[tuple[tuple[float, float], tuple[float, float]]]) -> float:
    extra = sum(r1 - d1 * _share(d0, r0) for (d1, r1), (d0, r0) in strata)
    followed = sum(d1 for (d1, _), _ in strata)
    return extra / followed if followed else 0.0


def _resampled(
    plans: Plans, rng: np.random.Generator, resamples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Declined and recovered cents of `resamples` resamples (with replacement) of the plans."""
    declined = np.asarray(plans.declined_cents, dtype=np.float64)
    recovered = np.asarray(plans.recovered_cents, dtype=np.float64)
    size = len(declined)
    batch = max(1, _CELLS_PER_BATCH // max(size, 1))
    declined_sums, recovered_sums = [], []
    for start in range(0, resamples, batch):
        picks = rng.integers(0, size, size=(min(batch, resamples - start), size))
        declined_sums.append(declined[picks].sum(axis=1))
        recovered_sums.append(recovered[picks].sum(axis=1))
    return np.concatenate(declined_sums), np.concatenate(recovered_sums)
