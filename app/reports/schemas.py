"""The declined-recovery report as the API answers it (DESIGN.md fixes the four totals)."""

from __future__ import annotations

from datetime import date

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


class DeclinedRecoveryReport(BaseModel):
    declined_cents: int
    followed_up_cents: int
    recovered_cents: int
    recovered_after_followup_cents: int
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
