"""A dealer group of three rooftops in two time zones, and a shop to drive ROs through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.deps import Database
from tests.app.followups.shop import Shop
from tests.support import load_sample_dealer

DEALER_TOML = """
[group]
name = "Bayview Auto Group"
recovery_window_days = 365

[[rooftop]]
slug = "bayview-toyota"
name = "Bayview Toyota"
timezone = "America/Los_Angeles"
sms_from = "+14155550100"
service_desk = "+14155550199"
quiet_hours = "21:00-08:00"
followup_days = [3, 10, 30]
followup_holdout_percent = 0  # every plan followed up; tests/app/followups/test_holdout.py draws
promise_margin_minutes = 30
[rooftop.dms]
kind = "simulator"
seed = 1

[[rooftop]]
slug = "bayview-ford"
name = "Bayview Ford"
timezone = "America/Los_Angeles"
sms_from = "+14155550200"
followup_days = [0, 10, 30]
followup_holdout_percent = 0
[rooftop.dms]
kind = "simulator"
seed = 2

[[rooftop]]
slug = "harbor-honda"
name = "Harbor Honda"
timezone = "America/New_York"
sms_from = "+12125550300"
followup_days = [0, 3]
followup_holdout_percent = 0
promise_margin_minutes = 45
[rooftop.stage_alert_minutes]
awaiting_parts = 240
[rooftop.dms]
kind = "simulator"
seed = 3
"""


@pytest.fixture
def dealer(database: Database, tmp_path: Path) -> Database:
    path = tmp_path / "dealer.toml"
    path.write_text(DEALER_TOML, encoding="utf-8")
    load_sample_dealer(database, path)
    return database


@pytest.fixture
def shop(dealer: Database) -> Iterator[Shop]:
    """A shop on its own session; the test commits (or runs jobs, which use their own)."""
    with dealer.sessions() as session:
        yield Shop(session)


@pytest.fixture
def db_session(dealer: Database) -> Iterator[Session]:
    with dealer.sessions() as session:
        yield session
