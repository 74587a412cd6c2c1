"""Followed against held-out plans in the declined-recovery report: API, page and CSV, over HTTP."""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from app.auth.service import create_api_token, create_user
from app.config import Settings
from app.db import utcnow
from app.dealers.models import DealerGroup
from app.deps import Database
from app.followups.models import FollowupPlan
from app.main import create_app
from tests.app.followups.conftest import DEALER_TOML
from tests.app.followups.shop import Line, Shop
from tests.app.followups.test_holdout import with_percent
from tests.app.web.conftest import PASSWORD, logged_in
from tests.support import ServedApp, load_sample_dealer

BLOCK = ("plans", "lines", "declined_cents", "recovered_lines", "recovered_cents")
DECLINABLE = [
    ("BRKPAD", "Front brake pads", 41200),
    ("TIRES4", "Four tires", 78000),
    ("ALIGN", "Wheel alignment", 12995),
    ("WIPER", "Wiper blades", 4500),
    ("BATT", "Battery", 21900),
]
RAW_GROUPS = text(
    """
    SELECT p.holdout, COUNT(DISTINCT p.id), COUNT(l.id), COALESCE(SUM(l.amount_cents), 0),
           COUNT(r.id), COALESCE(SUM(r.recovered_cents), 0)
    FROM followup_plan p
    JOIN followup_line fl ON fl.plan_id = p.id
    JOIN ro_line l ON l.id = fl.ro_line_id
    JOIN repair_order ro ON ro.id = l.repair_order_id
    JOIN rooftop rf ON rf.id = ro.rooftop_id
    LEFT JOIN recovery r ON r.declined_line_id = l.id
    WHERE p.holdout_percent > 0 AND ro.stage <> 'canceled'
      AND (l.status = 'declined' OR (l.status = 'pending' AND ro.stage = 'closed'))
      AND (CAST(:rooftop AS VARCHAR) IS NULL OR rf.slug = :rooftop)
    GROUP BY p.holdout
    """
)


def raw_groups(database: Database, rooftop: str | None = None) -> dict[str, dict[str, int]]:
    """The followed and held-out blocks straight from the tables (every line here is recent)."""
    found = {"followed": dict.fromkeys(BLOCK, 0), "holdout": dict.fromkeys(BLOCK, 0)}
    with database.engine.connect() as conn:
        for held, *numbers in conn.execute(RAW_GROUPS, {"rooftop": rooftop}).all():
            found["holdout" if held else "followed"] = dict(
                zip(BLOCK, (int(n) for n in numbers), strict=True)
            )
    return found


@dataclass
class Experiment:
    served: ServedApp
    database: Database
    since: date
    headers: dict[str, str]


@pytest.fixture
def experiment(database: Database, settings: Settings, tmp_path: Path) -> Iterator[Experiment]:
    """Bayview Toyota holds out half its plans; the work of followed plans comes back more."""
    toml = with_percent(DEALER_TOML, "bayview-toyota", 50)
    (tmp_path / "dealer.toml").write_text(toml, encoding="utf-8")
    load_sample_dealer(database, tmp_path / "dealer.toml")
    rng = random.Random(29)
    start = utcnow() - timedelta(days=20)
    with database.transaction() as session:
        shop = Shop(session)
        for n in range(170):
            slug = "bayview-ford" if n % 17 == 0 else "bayview-toyota"  # Ford: no holdout
            customer = shop.customer("Sam", f"Lee{n}", f"+1628210{n:04d}")
            car = shop.vehicle(customer, f"1HGCM82633A{n:06d}")
            picked = rng.sample(DECLINABLE, rng.choice((1, 1, 2)))
            lines = [Line("A", "OILCHG", "Oil and filter", 8995, "approved")] + [
                Line("BC"[i], *item, "declined") for i, item in enumerate(picked)
            ]
            closed = start + timedelta(hours=2 * n)
            ro = shop.open_ro(
                slug,
                f"R{n}",
                customer=customer,
                vehicle=car,
                at=closed - timedelta(hours=3),
                lines=lines,
            )
            shop.close(ro, at=closed)
            plan = session.scalars(
                select(FollowupPlan).where(FollowupPlan.repair_order_id == ro.id)
            ).one()
            if rng.random() < (0.15 if plan.holdout else 0.5):
                back = shop.open_ro(
                    "bayview-toyota",
                    f"B{n}",
                    customer=customer,
                    vehicle=car,
                    at=closed + timedelta(days=1),
                    lines=[
                        Line(ln.code, ln.op_code, ln.description, ln.cents, "approved")
                        for ln in lines[1:]
                    ],
                )
                shop.close(back, at=closed + timedelta(days=1, hours=4))
        group = session.scalars(select(DealerGroup)).one()
        token = create_api_token(session, group_id=group.id, name="d", role="director", rooftops=[])
        create_user(
            session,
            group_id=group.id,
            email="director@bayview.example",
            password=PASSWORD,
            role="director",
            rooftops=[],
        )
    with ServedApp(create_app(settings, database=database)) as app:
        yield Experiment(
            served=app,
            database=database,
            since=(start - timedelta(days=1)).date(),
            headers={"Authorization": f"Bearer {token}"},
        )


def report(experiment: Experiment, **params: str) -> dict:  # type: ignore[type-arg]
    response = httpx.get(
        f"{experiment.served.url}/api/v1/reports/declined-recovery",
        params={"since": experiment.since.isoformat(), **params},
        headers=experiment.headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_followed_and_held_out_blocks_add_up_to_the_raw_rows_with_an_interval(
    experiment: Experiment,
) -> None:
    answer = report(experiment)
    raw = raw_groups(experiment.database)
    assert {k: answer["followed"][k] for k in BLOCK} == raw["followed"]
    assert {k: answer["holdout"][k] for k in BLOCK} == raw["holdout"]
    assert raw["followed"]["lines"] >= 30 and raw["holdout"]["lines"] >= 30
    # Every line of a drawn plan carries its draw; the blocks are sums of those lines.
    drawn = [ln for ln in answer["lines"] if ln["holdout_percent"]]
    assert {ln["rooftop"] for ln in drawn} == {"bayview-toyota"}
    for name, held in (("followed", False), ("holdout", True)):
        mine = [ln for ln in drawn if ln["holdout"] is held]
        assert answer[name]["lines"] == len(mine)
        assert answer[name]["recovered_cents"] == sum(ln["recovered_cents"] for ln in mine)
    # Ford's plans were made with no holdout: in the totals, not in the comparison.
    ford = [ln for ln in answer["lines"] if ln["rooftop"] == "bayview-ford"]
    assert ford and all(ln["holdout"] is False and ln["holdout_percent"] == 0 for ln in ford)
    inc = answer["incremental"]
    f, h = raw["followed"], raw["holdout"]
    rate = f["recovered_cents"] / f["declined_cents"] - h["recovered_cents"] / h["declined_cents"]
    line_rate = f["recovered_lines"] / f["lines"] - h["recovered_lines"] / h["lines"]
    assert inc["rate"] == pytest.approx(rate) and inc["line_rate"] == pytest.approx(line_rate)
    assert inc["ci95"][0] < inc["rate"] < inc["ci95"][1]
    assert inc["line_ci95"][0] < inc["line_rate"] < inc["line_ci95"][1]
    assert abs(inc["cents"] - rate * f["declined_cents"]) <= 0.5
    assert inc["cents_ci95"] == [round(x * f["declined_cents"]) for x in inc["ci95"]]
    assert inc["lines"] == f["lines"] and inc["cents"] > 0
    assert "bootstrap" in inc["method"] and "Newcombe" in inc["method"]
    assert answer["not_enough_data"] is None
    # Per rooftop: only Toyota holds plans out, so its block is the whole comparison.
    [toyota] = answer["holdout_by_rooftop"]
    assert toyota["key"] == "bayview-toyota" and toyota["holdout_percent"] == 50
    assert toyota["followed"] == answer["followed"] and toyota["incremental"] == inc
    # Seeded: the same rows give the same figures.
    assert report(experiment)["incremental"] == inc


def test_a_rooftop_without_a_holdout_reads_as_the_old_report(experiment: Experiment) -> None:
    ford = report(experiment, rooftop="bayview-ford")
    assert ford["declined_cents"] > 0
    for key in ("followed", "holdout", "incremental", "not_enough_data", "holdout_by_rooftop"):
        assert key not in ford
    assert "incremental" not in ford["definitions"]
    with logged_in(experiment.served, "director@bayview.example") as client:
        page = client.get("/reports?rooftop=bayview-ford&days=30").text
    assert "What the follow-ups added" not in page and 'id="chart-holdout"' not in page


def test_below_the_minimum_sample_the_report_says_not_enough_data_yet(
    experiment: Experiment,
) -> None:
    # The last ROs closed 5.9 days ago; a week back, as the page's own window, holds a few
    # of them whatever the hour (`since` is a day on the rooftop's clock, hours behind UTC).
    recent = (utcnow() - timedelta(days=7)).date().isoformat()
    answer = report(experiment, since=recent)
    assert "incremental" in answer and answer["incremental"] is None
    assert answer["not_enough_data"].startswith("not enough data yet: ")
    assert answer["followed"]["lines"] + answer["holdout"]["lines"] > 0, answer
    with logged_in(experiment.served, "director@bayview.example") as client:
        page = client.get("/reports?days=7").text
    assert "not enough data yet" in page and "Follow-ups recovered" not in page


def test_the_director_sees_one_sentence_one_chart_and_a_csv(experiment: Experiment) -> None:
    with logged_in(experiment.served, "director@bayview.example") as client:
        page = client.get("/reports?days=30").text
        since = re.search(r'data-since="([\d-]+)"', page).group(1)  # type: ignore[union-attr]
        api = client.get(f"/api/v1/reports/declined-recovery?since={since}").json()
        download = client.get("/reports/followup-holdout.csv?days=30")
    inc = api["incremental"]
    sentence = re.search(r'<p id="holdout-sentence">(.*?)</p>', page, re.S).group(1)  # type: ignore[union-attr]
    words = re.sub(r"<[^>]+>", "", sentence)
    assert words == (
        f"Follow-ups recovered {money(inc['cents'])} more than no follow-up (95% CI "
        f"{money(inc['cents_ci95'][0])} to {money(inc['cents_ci95'][1])}) over "
        f"{inc['lines']} declined lines."
    )
    assert page.count('id="chart-holdout"') == 1
    assert "Followed up" in page and "Held out (no follow-up)" in page
    assert "bootstrap" in page and "Newcombe" in page
    assert f"{api['followed']['lines']} declined lines" in page
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [row["scope"] for row in rows] == ["all", "bayview-toyota"]
    assert int(rows[0]["followed_lines"]) == api["followed"]["lines"]
    # The page's CSV is in dollars; the API keeps its contract's cents.
    assert Decimal(rows[0]["holdout_recovered_usd"]) * 100 == api["holdout"]["recovered_cents"]
    assert Decimal(rows[0]["incremental_usd"]) * 100 == inc["cents"]
    assert float(rows[0]["incremental_rate_ci95_low"]) == pytest.approx(inc["ci95"][0], abs=1e-6)


def money(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"
