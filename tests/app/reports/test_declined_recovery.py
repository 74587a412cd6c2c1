"""GET /api/v1/reports/declined-recovery over real HTTP: totals traced to raw rows, scopes, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from sqlalchemy import bindparam, text

from app.auth.service import create_api_token
from app.config import Settings
from app.db import UTCDateTime
from app.dealers.models import Rooftop
from app.deps import Database
from app.main import create_app
from scripts.simulate_month import START, simulate
from tests.app.reports.test_holdout_report import BLOCK, raw_groups
from tests.support import ServedApp

SINCE = START.date().isoformat()
TOTALS = (
    "declined_cents",
    "followed_up_cents",
    "recovered_cents",
    "recovered_after_followup_cents",
)
BREAKDOWNS = ("by_rooftop", "by_advisor", "by_op_code", "by_touch", "by_month")


@pytest.fixture
def simulated(database: Database) -> Database:
    # Eight more days on the clock: comebacks (4-14 days after a close) land after the touches.
    simulate(database, seed=3, days=12, tick_hours=3, settle_days=8)
    return database


@pytest.fixture
def served(simulated: Database, settings: Settings) -> Iterator[ServedApp]:
    with ServedApp(create_app(settings, database=simulated)) as app:
        yield app


def token(database: Database, role: str, slugs: tuple[str, ...] = ()) -> dict[str, str]:
    with database.transaction() as session:
        rooftops = [r for r in session.query(Rooftop).all() if r.slug in slugs]
        group_id = session.query(Rooftop.group_id).limit(1).scalar()
        value = create_api_token(
            session, group_id=group_id, name=role, role=role, rooftops=rooftops
        )
    return {"Authorization": f"Bearer {value}"}


def raw_totals(database: Database, rooftop: str | None = None) -> dict[str, int]:
    """The four numbers straight from the tables, without the report service."""
    sql = text(
        """
        WITH declined AS (
          SELECT l.id, l.amount_cents, rf.slug
          FROM ro_line l JOIN repair_order ro ON ro.id = l.repair_order_id
          JOIN rooftop rf ON rf.id = ro.rooftop_id
          WHERE ro.stage <> 'canceled' AND COALESCE(ro.closed_at, ro.opened_at) >= :since
            AND (l.status = 'declined' OR (l.status = 'pending' AND ro.stage = 'closed'))
            AND (CAST(:rooftop AS VARCHAR) IS NULL OR rf.slug = :rooftop)
        ), sent AS (
          SELECT fl.ro_line_id FROM followup_line fl
          JOIN followup_touch t ON t.plan_id = fl.plan_id
          JOIN outbound_message m ON m.id = t.outbound_message_id
          WHERE m.state IN ('sent', 'delivered', 'read')
        )
        SELECT
          (SELECT COALESCE(SUM(amount_cents), 0) FROM declined),
          (SELECT COALESCE(SUM(d.amount_cents), 0) FROM declined d
             LEFT JOIN recovery r ON r.declined_line_id = d.id
             WHERE (r.id IS NULL AND d.id IN (SELECT ro_line_id FROM sent))
                OR r.preceding_touch_no IS NOT NULL),
          (SELECT COALESCE(SUM(r.recovered_cents), 0) FROM declined d
             JOIN recovery r ON r.declined_line_id = d.id),
          (SELECT COALESCE(SUM(r.recovered_cents), 0) FROM declined d
             JOIN recovery r ON r.declined_line_id = d.id WHERE r.preceding_touch_no IS NOT NULL)
        """
    ).bindparams(bindparam("since", type_=UTCDateTime()))
    # The simulated month starts at local midnight, 07:00 UTC: a UTC bound is exact here.
    with database.engine.connect() as conn:
        row = conn.execute(sql, {"since": START, "rooftop": rooftop}).one()
    return dict(zip(TOTALS, (int(v) for v in row), strict=True))


def check_every_number_adds_up_to_the_raw_rows(served: ServedApp, simulated: Database) -> None:
    headers = token(simulated, "director")
    report = httpx.get(
        f"{served.url}/api/v1/reports/declined-recovery",
        params={"since": SINCE},
        headers=headers,
        timeout=30,
    ).json()
    assert {k: report[k] for k in TOTALS} == raw_totals(simulated)
    assert report["declined_cents"] > report["followed_up_cents"] > 0
    assert report["recovered_cents"] >= report["recovered_after_followup_cents"] > 0
    for name in TOTALS:
        assert sum(line[name] for line in report["lines"]) == report[name]
        for breakdown in BREAKDOWNS:
            assert sum(row[name] for row in report[breakdown]) == report[name], (breakdown, name)
    for breakdown, field in (
        ("by_rooftop", "rooftop"),
        ("by_op_code", "op_code"),
        ("by_month", "month"),
    ):
        for row in report[breakdown]:
            mine = [ln for ln in report["lines"] if ln[field] == row["key"]]
            assert row["line_count"] == len(mine)
            assert row["recovered_cents"] == sum(ln["recovered_cents"] for ln in mine)
    for line in report["lines"]:
        assert line["recovered_cents"] in (0, line["declined_cents"])
        assert line["followed_up_cents"] == (line["declined_cents"] if line["touch"] else 0)
    touch_keys = {row["key"] for row in report["by_touch"]}
    assert "none" in touch_keys and "1" in touch_keys
    # The sample holds out 10% at both stores: a fortnight is too little for an estimate.
    raw = raw_groups(simulated)
    assert {k: report["followed"][k] for k in BLOCK} == raw["followed"]
    assert {k: report["holdout"][k] for k in BLOCK} == raw["holdout"]
    assert report["incremental"] is None and "not enough data yet" in report["not_enough_data"]
    by_rooftop = {row["key"]: row for row in report["holdout_by_rooftop"]}
    assert sorted(by_rooftop) == ["bayview-ford", "bayview-toyota"]
    for block in ("followed", "holdout"):
        for name in BLOCK[1:]:
            assert sum(row[block][name] for row in by_rooftop.values()) == report[block][name]


def check_one_rooftop_and_the_advisor_scope(served: ServedApp, simulated: Database) -> None:
    url = f"{served.url}/api/v1/reports/declined-recovery"
    ford = httpx.get(
        url,
        params={"rooftop": "bayview-ford", "since": SINCE},
        headers=token(simulated, "director"),
        timeout=30,
    ).json()
    assert {k: ford[k] for k in TOTALS} == raw_totals(simulated, "bayview-ford")
    assert {line["rooftop"] for line in ford["lines"]} == {"bayview-ford"}
    advisor = token(simulated, "advisor", ("bayview-ford",))
    mine = httpx.get(url, params={"since": SINCE}, headers=advisor, timeout=30).json()
    assert mine["rooftops"] == ["bayview-ford"] and mine["declined_cents"] == ford["declined_cents"]
    for slug in ("bayview-toyota", "no-such-store"):
        response = httpx.get(url, params={"rooftop": slug}, headers=advisor, timeout=30)
        assert response.status_code == 404 and slug in response.json()["detail"]
    assert httpx.get(url, timeout=30).status_code == 401
    assert (
        httpx.get(url, params={"since": "last tuesday"}, headers=advisor, timeout=30).status_code
        == 422
    )


def check_since_defaults_to_ninety_days_and_filters_by_decline_date(
    served: ServedApp, simulated: Database
) -> None:
    url = f"{served.url}/api/v1/reports/declined-recovery"
    headers = token(simulated, "director")
    later = httpx.get(url, params={"since": "2026-10-25"}, headers=headers, timeout=30).json()
    assert later["since"] == "2026-10-25"
    assert all(line["declined_on"] >= "2026-10-25" for line in later["lines"])
    everything = httpx.get(url, params={"since": SINCE}, headers=headers, timeout=30).json()
    assert 0 < len(later["lines"]) < len(everything["lines"])
    first_day = httpx.get(url, params={"since": "0001-01-01"}, headers=headers, timeout=30)
    assert first_day.status_code == 200  # was a 500: the day before it is out of range
    assert len(first_day.json()["lines"]) == len(everything["lines"])
    default = httpx.get(url, headers=headers, timeout=30).json()
    assert date.fromisoformat(default["since"]) < date.today()


def check_csv_has_one_row_per_line_with_the_same_sums(
    served: ServedApp, simulated: Database
) -> None:
    headers = token(simulated, "director")
    json_report = httpx.get(
        f"{served.url}/api/v1/reports/declined-recovery",
        params={"since": SINCE},
        headers=headers,
        timeout=30,
    ).json()
    for path, params in (
        ("/declined-recovery.csv", {"since": SINCE}),
        ("/declined-recovery", {"since": SINCE, "format": "csv"}),
    ):
        response = httpx.get(
            f"{served.url}/api/v1/reports{path}", params=params, headers=headers, timeout=30
        )
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/csv"
        )
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert len(rows) == len(json_report["lines"])
        for name in TOTALS:
            assert sum(int(row[name]) for row in rows) == json_report[name]


def test_the_simulated_fortnight_report(served: ServedApp, simulated: Database) -> None:
    """One simulated fortnight (the slow part) checked four ways."""
    check_every_number_adds_up_to_the_raw_rows(served, simulated)
    check_one_rooftop_and_the_advisor_scope(served, simulated)
    check_since_defaults_to_ninety_days_and_filters_by_decline_date(served, simulated)
    check_csv_has_one_row_per_line_with_the_same_sums(served, simulated)


def test_an_empty_group_reports_zeros(database: Database, settings: Settings) -> None:
    from tests.support import load_sample_dealer

    load_sample_dealer(database)
    with ServedApp(create_app(settings, database=database)) as app:
        report = httpx.get(
            f"{app.url}/api/v1/reports/declined-recovery",
            headers=token(database, "admin"),
            timeout=30,
        ).json()
    assert {k: report[k] for k in TOTALS} == dict.fromkeys(TOTALS, 0)
    assert report["lines"] == [] and all(report[b] == [] for b in BREAKDOWNS)
