"""The director's page: follow-ups against the holdout, as one chart and one CSV (in dollars;
the JSON API keeps its cents)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from app.reports.readable import dollars
from app.reports.schemas import DeclinedRecoveryReport, GroupTotals, HoldoutComparison
from app.web.charts import bar_chart

HOLDOUT_COLUMNS = (
    "scope", "holdout_percent_now",
    "followed_plans", "followed_lines", "followed_declined_usd", "followed_recovered_lines",
    "followed_recovered_usd",
    "holdout_plans", "holdout_lines", "holdout_declined_usd", "holdout_recovered_lines",
    "holdout_recovered_usd",
    "incremental_rate", "incremental_rate_ci95_low", "incremental_rate_ci95_high",
    "incremental_usd", "incremental_usd_ci95_low", "incremental_usd_ci95_high",
    "incremental_line_rate", "incremental_line_rate_ci95_low", "incremental_line_rate_ci95_high",
    "incremental_lines", "note",
)  # fmt: skip


def dollar_share(block: GroupTotals) -> float | None:
    """Share of a group's declined dollars that came back."""
    return block.recovered_cents / block.declined_cents if block.declined_cents else None


def holdout_chart(report: DeclinedRecoveryReport) -> Markup | None:
    """Followed and held-out recovery rates side by side; None when no holdout is in scope."""
    if report.followed is None or report.holdout is None:
        return None
    bars = [
        (name, round(100 * (dollar_share(block) or 0.0), 1))
        for name, block in (
            ("Followed up", report.followed),
            ("Held out (no follow-up)", report.holdout),
        )
    ]
    return bar_chart(
        chart_id="chart-holdout",
        title="Share of declined dollars recovered: followed up against held out",
        bars=bars,
        unit="%",
        empty_text="Nothing recovered in either group yet",
    )


def holdout_rows(report: DeclinedRecoveryReport) -> list[Sequence[object]]:
    """One CSV row for all rooftops in scope, then one per rooftop (HOLDOUT_COLUMNS order)."""
    if report.followed is None or report.holdout is None:
        return []
    total = HoldoutComparison(
        key="all",
        holdout_percent=None,
        followed=report.followed,
        holdout=report.holdout,
        incremental=report.incremental,
        not_enough_data=report.not_enough_data,
    )
    return [_row(c) for c in (total, *(report.holdout_by_rooftop or []))]


def _row(comparison: HoldoutComparison) -> list[object]:
    row: list[Any] = [comparison.key, comparison.holdout_percent]
    for block in (comparison.followed, comparison.holdout):
        row += [
            block.plans,
            block.lines,
            dollars(block.declined_cents),
            block.recovered_lines,
            dollars(block.recovered_cents),
        ]
    inc = comparison.incremental
    if inc is None:
        return row + [None] * 10 + [comparison.not_enough_data]
    # Rates stay numbers (a string "-0.01" would be taken for a formula and quoted).
    return [
        *row,
        round(inc.rate, 6),
        round(inc.ci95[0], 6),
        round(inc.ci95[1], 6),
        dollars(inc.cents),
        dollars(inc.cents_ci95[0]),
        dollars(inc.cents_ci95[1]),
        round(inc.line_rate, 6),
        round(inc.line_ci95[0], 6),
        round(inc.line_ci95[1], 6),
        inc.lines,
        inc.method,
    ]
