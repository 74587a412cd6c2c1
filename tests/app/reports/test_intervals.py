"""The holdout's 95% intervals: published values, plans as the unit, coverage of a known effect."""

from __future__ import annotations

import random

import pytest

from app.reports.intervals import (
    Plans,
    design_effect,
    dollar_rate_difference,
    rate_difference,
    wilson,
)


def one_line_plans(recovered: int, lines: int, cents: int = 10000) -> Plans:
    """`lines` plans of one line each, the first `recovered` of them won back."""
    won = [1] * recovered + [0] * (lines - recovered)
    return Plans(
        lines=[1] * lines,
        recovered_lines=won,
        declined_cents=[cents] * lines,
        recovered_cents=[cents * w for w in won],
    )


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombes_worked_examples(
    successes: int, trials: int, low: float, high: float
) -> None:
    assert [round(x, 4) for x in wilson(successes, trials)] == [low, high]


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (0, 10, 0, 10, -0.2775, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
        (10, 10, 0, 10, 0.6075, 1.0),
    ],
)
def test_one_line_plans_give_newcombes_published_method_10_intervals(
    a: int, m: int, b: int, n: int, low: float, high: float
) -> None:
    """Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10."""
    estimate, lower, upper = rate_difference([(one_line_plans(a, m), one_line_plans(b, n))])
    assert estimate == pytest.approx(a / m - b / n)
    assert (round(lower, 4), round(upper, 4)) == (low, high)


def test_plans_whose_lines_come_back_together_count_as_plans_not_lines() -> None:
    def pairs(recovered: int, plans: int) -> Plans:
        won = [2] * recovered + [0] * (plans - recovered)
        return Plans([2] * plans, won, [20000] * plans, [10000 * w for w in won])

    assert design_effect(one_line_plans(30, 100)) == 1.0
    assert design_effect(pairs(30, 100)) == pytest.approx(2.0)
    paired = rate_difference([(pairs(30, 100), pairs(10, 50))])
    as_plans = rate_difference([(one_line_plans(30, 100), one_line_plans(10, 50))])
    assert paired == pytest.approx(as_plans)
    as_lines = rate_difference([(one_line_plans(60, 200), one_line_plans(20, 100))])
    assert as_lines[2] - as_lines[1] < paired[2] - paired[1]  # lines alone would overstate


def test_strata_are_compared_within_themselves_and_weighted_by_the_followed_plans() -> None:
    # Two stores: one recovers 40% anyway and holds out half its plans, the other 10% and
    # holds out a tenth. Follow-ups add 10 points at both; pooling the groups would not say so.
    busy = (one_line_plans(50, 100), one_line_plans(40, 100))
    quiet = (one_line_plans(180, 900), one_line_plans(10, 100))
    estimate, low, high = rate_difference([busy, quiet])
    assert estimate == pytest.approx(0.10)
    pooled = (230 / 1000) - (50 / 200)
    assert pooled < 0 < low < estimate < high
    dollars, d_low, d_high = dollar_rate_difference([busy, quiet])
    assert dollars == pytest.approx(0.10) and d_low < dollars < d_high


def test_the_dollar_bootstrap_is_seeded_and_centred_on_the_difference_of_shares() -> None:
    followed = Plans([1, 2, 1, 1], [1, 0, 1, 0], [41200, 90000, 4500, 12995], [41200, 0, 4500, 0])
    held = Plans([1, 1, 2], [0, 1, 0], [78000, 15900, 30000], [0, 15900, 0])
    first = dollar_rate_difference([(followed, held)])
    assert first == dollar_rate_difference([(followed, held)])
    expected = 45700 / 148695 - 15900 / 123900
    assert first[0] == pytest.approx(expected)
    assert first[1] < expected < first[2]
    assert dollar_rate_difference([(followed, held)], seed=30) != first


def test_both_intervals_cover_a_known_effect_about_95_times_in_100() -> None:
    """Months drawn from a known truth: plans of 1-2 lines, skewed amounts, 17% held out."""
    rng = random.Random(20261206)
    amounts = [4500, 12995, 15900, 21900, 41200, 78000]
    truth = 0.30 - 0.18

    def month(plans: int, p: float) -> Plans:
        sizes = [rng.choice((1, 1, 2)) for _ in range(plans)]
        cents = [sum(rng.choice(amounts) for _ in range(size)) for size in sizes]
        back = [rng.random() < p for _ in range(plans)]
        return Plans(
            lines=sizes,
            recovered_lines=[s if b else 0 for s, b in zip(sizes, back, strict=True)],
            declined_cents=cents,
            recovered_cents=[c if b else 0 for c, b in zip(cents, back, strict=True)],
        )

    runs, lines_in, dollars_in = 300, 0, 0
    for _ in range(runs):
        stratum = (month(250, 0.30), month(50, 0.18))
        _, low, high = rate_difference([stratum])
        lines_in += low <= truth <= high
        _, low, high = dollar_rate_difference([stratum], resamples=1000)
        dollars_in += low <= truth <= high
    assert 0.91 <= lines_in / runs <= 0.99, lines_in
    assert 0.90 <= dollars_in / runs <= 0.99, dollars_in
