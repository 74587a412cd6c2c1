"""The declined-recovery report as the API answers it (DESIGN.md fixes the four totals)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field


class Amounts(BaseModel):
    """The four sums, in integer cents, and how many declined lines they add up."""

    declined_cents: int = 0
    followed_up_cents: int = 0
    recovered_cents: int = 0
    recovered_after_followup_cents: int = 0
    line_count: int = 0


class Breakdown(Amounts):
    key: str = Field(description="rooftop slug, advisor, op code, touch number ('none') or YYYY-MM")


class RecoveryLine(BaseModel):
    """One declined line; every total in the report is a column sum of these rows."""

    line_id: int
    rooftop: str
    ro_number: str
    advisor: str
    op_code: str
    description: str
    vin: str | None
    customer_id: int | None
    declined_on: date = Field(description="the declining RO's close (or open) date, rooftop time")
    month: str
    plan_id: int | None = Field(description="the follow-up plan covering this line, if any")
    touch: int = Field(
        description="last touch sent before the recovery (or until now); 0 = never followed up"
    )
    declined_cents: int
    followed_up_cents: int
    recovered_cents: int
    recovered_after_followup_cents: int
    recovered_on: date | None = None
    recovering_rooftop: str | None = None
    recovering_ro_number: str | None = None
    recovering_amount_cents: int | None = Field(
        None, description="what the later RO charged (informational; not summed)"
    )
    customer_replied: bool | None = None
    holdout: bool | None = Field(
        None, description="true: the plan was held out (sent nothing); null: no plan"
    )
    holdout_percent: int | None = Field(
        None, description="the rooftop's holdout percent when the plan was drawn; 0 = no draw"
    )
    booked_cents: int = Field(
        0, description="the amount when the customer booked the line from their page"
    )


class GroupTotals(BaseModel):
    """Declined lines of followed, or of held-out, plans that were drawn, and what came back."""

    plans: int = 0
    lines: int = 0
    declined_cents: int = 0
    recovered_lines: int = 0
    recovered_cents: int = 0


class Incremental(BaseModel):
    """What the follow-ups won beyond what came back from held-out plans, with 95% intervals."""

    rate: float = Field(description="share of declined dollars recovered, followed minus held out")
    ci95: tuple[float, float] = Field(description="bootstrap 95% interval of `rate`")
    cents: int = Field(description="rate x the followed plans' declined cents")
    cents_ci95: tuple[int, int] = Field(description="ci95 x the followed plans' declined cents")
    line_rate: float = Field(
        description="share of declined lines recovered, followed minus held out"
    )
    line_ci95: tuple[float, float] = Field(description="Newcombe (Wilson score) 95% interval")
    lines: int = Field(description="followed declined lines the dollars are over")
    method: str


class HoldoutComparison(BaseModel):
    """Followed against held-out plans for one rooftop (or `all`)."""

    key: str
    holdout_percent: int | None = Field(description="the percent in force now (null for all)")
    followed: GroupTotals
    holdout: GroupTotals
    incremental: Incremental | None = Field(
        description="null: not enough data yet (see `not_enough_data`)"
    )
    not_enough_data: str | None = None


class DeclinedRecoveryReport(BaseModel):
    declined_cents: int
    followed_up_cents: int
    recovered_cents: int
    recovered_after_followup_cents: int
    # Beside recovered: declined lines the customer booked from their page (issue 28).
    booked_cents: int = 0
    booked_lines: int = 0
    lines: list[RecoveryLine]
    by_rooftop: list[Breakdown]
    by_advisor: list[Breakdown]
    by_op_code: list[Breakdown]
    by_touch: list[Breakdown]
    by_month: list[Breakdown]
    rooftops: list[str]
    since: date
    recovery_window_days: int
    definitions: dict[str, str]
    # Present only when a rooftop in scope holds plans out (DESIGN.md): left out of the JSON
    # when none does, so a report without a holdout reads as it always did.
    followed: GroupTotals | None = None
    holdout: GroupTotals | None = None
    incremental: Incremental | None = None
    not_enough_data: str | None = None
    holdout_by_rooftop: list[HoldoutComparison] | None = None


HOLDOUT_KEYS = frozenset(
    {"followed", "holdout", "incremental", "not_enough_data", "holdout_by_rooftop"}
)


def report_json(report: DeclinedRecoveryReport) -> dict[str, Any]:
    """The API's JSON: the holdout keys appear only when a rooftop in scope holds plans out."""
    return report.model_dump(mode="json", exclude=None if report.followed else set(HOLDOUT_KEYS))
