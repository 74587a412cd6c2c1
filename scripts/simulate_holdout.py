"""Months of growing volume with a known follow-up effect: does the report's interval find it?

    .venv/bin/python -m scripts.simulate_holdout [--volumes 4,16,64] [--seeds 7]
        [--holdout-percent 10] [--followed 0.30] [--held-out 0.18] [--tick-hours 1]

Each volume (visits a day per rooftop) is one simulated month (scripts/simulate_month.py)
in a fresh SQLite database, run through the real code, with the clock running on
15 days after the last visit so every comeback is seen. The truth is set in the
script (`ReturnRates`): a followed plan's customer comes back for its declined work
with probability `followed`, a held-out one with `held_out`, so the true difference
in the share of declined lines, and of declined dollars, recovered is their
difference, and the true incremental dollars are that times the followed plans'
declined dollars. The table prints each month's report beside the truth and, per
volume, how many of the months' intervals held the true effect and how wide they were.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sqlalchemy import select

from app.db import make_engine, make_session_factory
from app.dealers.models import DealerGroup
from app.deps import Database
from app.migrate import upgrade_to_head
from app.reports.schemas import DeclinedRecoveryReport
from app.reports.service import declined_recovery
from scripts.simulate_month import START, ReturnRates, simulate

SETTLE_DAYS = 15  # comebacks land 4 to 14 days after a close


def month(
    volume: int, *, seed: int, holdout_percent: int, rates: ReturnRates, tick_hours: int
) -> DeclinedRecoveryReport:
    """One simulated month at `volume` visits a day per rooftop; its declined-recovery report."""
    url = f"sqlite:///{tempfile.mkdtemp()}/holdout-{volume}.db"
    upgrade_to_head(url)
    engine = make_engine(url)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    simulate(
        database,
        seed=seed,
        visits_per_day=volume,
        settle_days=SETTLE_DAYS,
        holdout_percent=holdout_percent,
        rates=rates,
        tick_hours=tick_hours,
    )
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        report = declined_recovery(
            session, group=group, rooftops=list(group.rooftops), since=START.date()
        )
    engine.dispose()
    return report


def row(
    volume: int, seed: int, report: DeclinedRecoveryReport, rates: ReturnRates, seconds: float
) -> str:
    """One line of the table: the month's sample, the truth, the estimate and its interval."""
    followed, held = report.followed, report.holdout
    assert followed is not None and held is not None
    inc = report.incremental
    head = f"{volume:>6d} {seed:>4d} {followed.lines:>6d} {held.lines:>5d} {rates.effect:>+7.1%} "
    if inc is None:
        return head + f"  {report.not_enough_data}"
    true_cents = rates.effect * followed.declined_cents
    low, high = inc.ci95
    line_low, line_high = inc.line_ci95
    return head + (
        f"{inc.rate:>+7.1%} [{low:+6.1%}, {high:+6.1%}] {_yes(low <= rates.effect <= high):>3s} "
        f"{high - low:>6.1%} "
        f"{inc.line_rate:>+7.1%} [{line_low:+6.1%}, {line_high:+6.1%}] "
        f"{_yes(line_low <= rates.effect <= line_high):>3s} "
        f"{true_cents / 100:>10,.0f} {inc.cents / 100:>10,.0f} "
        f"[{inc.cents_ci95[0] / 100:>9,.0f}, {inc.cents_ci95[1] / 100:>9,.0f}] {seconds:>5.0f}s"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


HEADER = (
    f"{'visits':>6s} {'':>4s} {'lines':>6s} {'lines':>5s} {'true':>7s} "
    f"{'dollar share recovered':^32s} {'width':>6s} "
    f"{'line share recovered':^28s} "
    f"{'true $':>10s} {'measured $':>10s} {'95% CI $':^22s} {'time':>6s}\n"
    f"{'/day':>6s} {'seed':>4s} {'follow':>6s} {'held':>5s} {'effect':>7s} "
    f"{'diff':>7s} {'95% CI':^20s} {'in?':>3s} {'':>6s} "
    f"{'diff':>7s} {'95% CI':^16s} {'in?':>3s}"
)


def summary(volume: int, reports: list[DeclinedRecoveryReport], effect: float) -> str:
    """Per volume: intervals that held the truth, and their mean width (dollars, then lines)."""
    done = [r.incremental for r in reports if r.incremental is not None]
    if not done:
        return f"{volume:>6d}  no month had enough data"
    dollars = sum(i.ci95[0] <= effect <= i.ci95[1] for i in done)
    lines = sum(i.line_ci95[0] <= effect <= i.line_ci95[1] for i in done)
    width = sum(i.ci95[1] - i.ci95[0] for i in done) / len(done)
    line_width = sum(i.line_ci95[1] - i.line_ci95[0] for i in done) / len(done)
    return (
        f"{volume:>6d}  dollars: {dollars}/{len(done)} intervals hold the truth, mean width "
        f"{width:.1%}; lines: {lines}/{len(done)}, mean width {line_width:.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", default="4,16,64", help="visits a day per rooftop")
    parser.add_argument("--seeds", default="7", help="one simulated month per seed and volume")
    parser.add_argument("--holdout-percent", type=int, default=10)
    parser.add_argument("--followed", type=float, default=ReturnRates.followed)
    parser.add_argument("--held-out", type=float, default=ReturnRates.held_out)
    parser.add_argument("--tick-hours", type=int, default=1)
    args = parser.parse_args()
    rates = ReturnRates(followed=args.followed, held_out=args.held_out)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"True effect: a followed plan's work comes back with p={rates.followed:.2f}, a "
        f"held-out one's with p={rates.held_out:.2f}; holdout {args.holdout_percent}%, "
        f"{SETTLE_DAYS} settle days."
    )
    print(HEADER)
    summaries = []
    for volume in (int(v) for v in args.volumes.split(",")):
        reports = []
        for seed in seeds:
            started = time.monotonic()
            report = month(
                volume,
                seed=seed,
                holdout_percent=args.holdout_percent,
                rates=rates,
                tick_hours=args.tick_hours,
            )
            reports.append(report)
            print(row(volume, seed, report, rates, time.monotonic() - started), flush=True)
        summaries.append(summary(volume, reports, rates.effect))
    print("\n" + "\n".join(summaries))
    method = next((r.incremental.method for r in reports if r.incremental is not None), None)
    if method:
        print(f"\nMethod: {method}")


if __name__ == "__main__":
    main()
