"""Followed against held-out plans: what the follow-ups recovered beyond the holdout's baseline.

Only plans that were drawn (holdout percent above 0 when they were made, see
app/followups/holdout.py) take part; lines of older plans, and declined lines no
plan covers, stay in the report's other totals. Groups are compared as drawn (intent
to treat): a followed plan whose customer opted out or never got a text still counts
as followed, because the draw, not the customer, decided which group a plan is in.

Plans are compared within their stratum, the rooftop and the percent in force, so a
changed percent or a rooftop with a higher recovery rate cannot pass for an effect;
the estimate is then weighted by the followed plans (app/reports/intervals.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import chunks
from app.dealers.models import Rooftop
from app.followups.models import FollowupPlan
from app.reports import intervals
from app.reports.schemas import GroupTotals, HoldoutComparison, Incremental, RecoveryLine

# Below these the report says "not enough data yet" instead of a figure.
MIN_LINES_PER_GROUP = 30
MIN_RECOVERED_LINES = 10
METHOD = (
    "Dollars: the difference in the share of declined dollars recovered, with a 95% "
    f"percentile bootstrap ({intervals.RESAMPLES:,} resamples of plans within each group, "
    f"seed {intervals.SEED}). Lines: the difference in the share of declined lines recovered, "
    "with Newcombe's hybrid Wilson score 95% interval, counts divided by the design effect "
    "of plans (Rao-Scott), as a plan's lines tend to come back together. Plans are compared "
    "as drawn, whether or not a text reached the customer."
)
STRATIFIED = (
    " Followed and held-out plans are compared within each rooftop and holdout percent, "
    "weighted by the followed plans."
)
DEFINITIONS = {
    "followed": "declined lines of plans drawn to be followed up (holdout_percent above 0)",
    "holdout": "declined lines of plans drawn into the holdout: no follow-up was sent",
    "incremental": (
        "followed minus held-out recovery: `rate` and `ci95` in share of declined dollars, "
        "`cents` = rate x followed declined_cents, `line_rate`/`line_ci95` in share of lines; "
        f"null below {MIN_LINES_PER_GROUP} lines in each group or "
        f"{MIN_RECOVERED_LINES} recovered lines"
    ),
}
Stratum = tuple[str, int]


def plan_draws(session: Session, plan_ids: Sequence[int]) -> dict[int, tuple[bool, int]]:
    """plan id -> (held out, percent in force when drawn)."""
    draws: dict[int, tuple[bool, int]] = {}
    for chunk in chunks(list(plan_ids), 500):
        rows = session.execute(
            select(FollowupPlan.id, FollowupPlan.holdout, FollowupPlan.holdout_percent).where(
                FollowupPlan.id.in_(chunk)
            )
        ).all()
        draws.update({plan_id: (held, percent) for plan_id, held, percent in rows})
    return draws


def holdout_fields(lines: Sequence[RecoveryLine], rooftops: Sequence[Rooftop]) -> dict[str, object]:
    """The report's holdout blocks, or nothing when no rooftop in scope holds plans out."""
    drawn = [ln for ln in lines if ln.plan_id is not None and ln.holdout_percent]
    current = {r.slug: r.settings.followup_holdout_percent for r in rooftops}
    with_lines = {ln.rooftop for ln in drawn}
    if not drawn and not any(current.values()):
        return {}
    total = compare("all", drawn, percent=None)
    return {
        "followed": total.followed,
        "holdout": total.holdout,
        "incremental": total.incremental,
        "not_enough_data": total.not_enough_data,
        "holdout_by_rooftop": [
            compare(slug, [ln for ln in drawn if ln.rooftop == slug], percent=percent)
            for slug, percent in current.items()
            if percent or slug in with_lines
        ],
    }


def compare(key: str, drawn: Sequence[RecoveryLine], *, percent: int | None) -> HoldoutComparison:
    """Totals of both groups and, with enough data, the incremental estimate."""
    cells: dict[Stratum, dict[bool, list[RecoveryLine]]] = defaultdict(
        lambda: {True: [], False: []}
    )
    for line in sorted(drawn, key=lambda ln: ln.line_id):
        cells[(line.rooftop, line.holdout_percent or 0)][bool(line.holdout)].append(line)
    # A stratum tells something only with declined dollars in both groups.
    usable = {
        stratum: groups
        for stratum, groups in sorted(cells.items())
        if all(sum(ln.declined_cents for ln in groups[held]) > 0 for held in (True, False))
    }
    incremental, why = _incremental(usable)
    return HoldoutComparison(
        key=key,
        holdout_percent=percent,
        followed=totals([ln for ln in drawn if not ln.holdout]),
        holdout=totals([ln for ln in drawn if ln.holdout]),
        incremental=incremental,
        not_enough_data=why,
    )


def totals(lines: Sequence[RecoveryLine]) -> GroupTotals:
    """Plain sums over one group's lines."""
    return GroupTotals(
        plans=len({ln.plan_id for ln in lines}),
        lines=len(lines),
        declined_cents=sum(ln.declined_cents for ln in lines),
        recovered_lines=sum(1 for ln in lines if _won(ln)),
        recovered_cents=sum(ln.recovered_cents for ln in lines),
    )


def _incremental(
    usable: dict[Stratum, dict[bool, list[RecoveryLine]]],
) -> tuple[Incremental | None, str | None]:
    followed = [ln for groups in usable.values() for ln in groups[False]]
    held = [ln for groups in usable.values() for ln in groups[True]]
    recovered = sum(1 for ln in followed + held if _won(ln))
    if (
        len(followed) < MIN_LINES_PER_GROUP
        or len(held) < MIN_LINES_PER_GROUP
        or recovered < MIN_RECOVERED_LINES
    ):
        return None, (
            f"not enough data yet: {len(followed)} followed and {len(held)} held-out declined "
            f"lines, {recovered} recovered; an estimate needs {MIN_LINES_PER_GROUP} lines in "
            f"each group and {MIN_RECOVERED_LINES} recovered"
        )
    strata = [(_plans(groups[False]), _plans(groups[True])) for groups in usable.values()]
    line_rate, line_low, line_high = intervals.rate_difference(strata)
    rate, low, high = intervals.dollar_rate_difference(strata)
    followed_cents = sum(ln.declined_cents for ln in followed)
    return (
        Incremental(
            rate=rate,
            ci95=(low, high),
            cents=round(rate * followed_cents),
            cents_ci95=(round(low * followed_cents), round(high * followed_cents)),
            line_rate=line_rate,
            line_ci95=(line_low, line_high),
            lines=len(followed),
            method=METHOD + (STRATIFIED if len(usable) > 1 else ""),
        ),
        None,
    )


def _won(line: RecoveryLine) -> bool:
    """Recovered: a Recovery row exists (a zero-cent line counts as a line too)."""
    return line.recovered_on is not None


def _plans(lines: Sequence[RecoveryLine]) -> intervals.Plans:
    """One group's lines summed plan by plan (the draw's unit), in plan order."""
    by_plan: dict[int, list[RecoveryLine]] = defaultdict(list)
    for line in lines:
        by_plan[line.plan_id or 0].append(line)
    plans = [by_plan[plan_id] for plan_id in sorted(by_plan)]
    return intervals.Plans(
        lines=[len(p) for p in plans],
        recovered_lines=[sum(1 for ln in p if _won(ln)) for p in plans],
        declined_cents=[sum(ln.declined_cents for ln in p) for p in plans],
        recovered_cents=[sum(ln.recovered_cents for ln in p) for p in plans],
    )
