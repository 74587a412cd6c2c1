"""The declined-recovery report as people read it: dollars, customers by name, op codes with
their descriptions. The JSON API keeps its contract (integer cents, customer ids); the
director's page and its CSV downloads use these."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.customers.models import Customer
from app.db import chunks
from app.reports.schemas import Breakdown, DeclinedRecoveryReport, RecoveryLine


def dollars(cents: int | None) -> Decimal | None:
    """Cents as a number of dollars with two decimals (a spreadsheet sums it): 41200 -> 412.00."""
    return None if cents is None else (Decimal(cents) / 100).quantize(Decimal("0.01"))


def customer_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of these customers ("Sam Lee"; "Customer 7" when the DMS gave none)."""
    wanted = sorted({i for i in ids if i is not None})
    names: dict[int, str] = {}
    for chunk in chunks(wanted, 500):
        for customer in session.scalars(select(Customer).where(Customer.id.in_(chunk))):
            names[customer.id] = customer.display_name
    return names


def op_code_descriptions(lines: Sequence[RecoveryLine]) -> dict[str, str]:
    """Each op code's description as the DMS wrote it most often on these lines."""
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        if line.description:
            seen[line.op_code][line.description] += 1
    return {code: counts.most_common(1)[0][0] for code, counts in seen.items()}


LINE_COLUMNS = (
    "rooftop", "ro_number", "declined_on", "advisor", "customer", "customer_id", "vin",
    "op_code", "description", "touch", "declined_usd", "followed_up_usd", "recovered_usd",
    "recovered_after_followup_usd", "recovered_on", "recovering_rooftop",
    "recovering_ro_number", "recovering_amount_usd", "holdout",
)  # fmt: skip


def line_rows(report: DeclinedRecoveryReport, names: dict[int, str]) -> list[list[object]]:
    """One row per declined line, in LINE_COLUMNS order, amounts in dollars."""
    return [
        [
            line.rooftop,
            line.ro_number,
            line.declined_on.isoformat(),
            line.advisor,
            names.get(line.customer_id, "") if line.customer_id is not None else "",
            line.customer_id,
            line.vin,
            line.op_code,
            line.description,
            line.touch,
            dollars(line.declined_cents),
            dollars(line.followed_up_cents),
            dollars(line.recovered_cents),
            dollars(line.recovered_after_followup_cents),
            line.recovered_on.isoformat() if line.recovered_on else None,
            line.recovering_rooftop,
            line.recovering_ro_number,
            dollars(line.recovering_amount_cents),
            line.holdout,
        ]
        for line in report.lines
    ]


BREAKDOWN_COLUMNS = (
    "lines", "declined_usd", "followed_up_usd", "recovered_usd", "recovered_after_followup_usd",
)  # fmt: skip


def breakdown_row(row: Breakdown) -> list[object]:
    """A breakdown's figures after its key, amounts in dollars."""
    return [
        row.line_count,
        dollars(row.declined_cents),
        dollars(row.followed_up_cents),
        dollars(row.recovered_cents),
        dollars(row.recovered_after_followup_cents),
    ]
