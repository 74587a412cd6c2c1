"""`make soak`: two simulated months with a known follow-up effect; the report must find it.

Each month runs through the real code (scripts/simulate_month.py) in its own SQLite file.
Half the plans are held out so that a few minutes of simulation give an estimate; the
interval must hold the true effect at both volumes and narrow as the volume grows.
How often such intervals hold the truth is tests/app/reports/test_intervals.py's question.
"""

from __future__ import annotations

import pytest

from scripts.simulate_holdout import month
from scripts.simulate_month import ReturnRates

pytestmark = pytest.mark.soak
RATES = ReturnRates(followed=0.30, held_out=0.18)


def test_a_known_effect_lies_inside_an_interval_that_narrows_with_volume() -> None:
    widths = []
    for volume in (4, 16):
        report = month(volume, seed=11, holdout_percent=50, rates=RATES, tick_hours=2)
        assert report.followed is not None and report.holdout is not None
        inc = report.incremental
        assert inc is not None, report.not_enough_data
        assert inc.ci95[0] <= RATES.effect <= inc.ci95[1], (volume, inc)
        assert inc.line_ci95[0] <= RATES.effect <= inc.line_ci95[1], (volume, inc)
        true_cents = RATES.effect * report.followed.declined_cents
        assert inc.cents_ci95[0] <= true_cents <= inc.cents_ci95[1]
        widths.append((inc.ci95[1] - inc.ci95[0], inc.line_ci95[1] - inc.line_ci95[0]))
    # Four times the volume: about half the width (1/sqrt(4)); 0.7 leaves room for chance.
    assert widths[1][0] < 0.7 * widths[0][0] and widths[1][1] < 0.7 * widths[0][1], widths
