"""followup_holdout_percent in the dealer's TOML: 0 to 50, default 10, errors that name it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.config import ConfigError, load_dealer_config
from app.dealers.models import DealerGroup, Rooftop
from app.deps import Database
from tests.support import SAMPLE_CONFIG, load_sample_dealer

BASE = SAMPLE_CONFIG.read_text()
FORD_LINE = "followup_days = [0, 10, 30]\nfollowup_holdout_percent = 10\n"


def with_ford(value: str) -> str:
    assert FORD_LINE in BASE
    return BASE.replace(
        FORD_LINE, f"followup_days = [0, 10, 30]\nfollowup_holdout_percent = {value}\n"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("51", "less than or equal to 50"),
        ("-1", "greater than or equal to 0"),
        ("12.5", "valid integer"),
        ('"10"', "valid integer"),
        ("true", "valid integer"),
    ],
)
def test_a_percent_outside_0_to_50_is_an_error_naming_the_file_and_key(
    tmp_path: Path, value: str, problem: str
) -> None:
    path = tmp_path / "dealer.toml"
    path.write_text(with_ford(value))
    with pytest.raises(ConfigError) as caught:
        load_dealer_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == "rooftop[bayview-ford].followup_holdout_percent"
    assert problem in caught.value.problem


def test_config_load_refuses_a_bad_percent_in_one_line_and_loads_nothing(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "dealer.toml"
    path.write_text(with_ford("60"))
    done = subprocess.run(
        [sys.executable, "-m", "app", "config", "load", str(path)],
        env={**os.environ, "PITWALL_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line == (
        f"error: {path}: rooftop[bayview-ford].followup_holdout_percent: "
        "Input should be less than or equal to 50"
    )
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DealerGroup)) == 0


def test_the_percent_defaults_to_10_and_0_and_50_load(database: Database, tmp_path: Path) -> None:
    without = re.sub(r"^followup_holdout_percent.*\n", "", BASE, flags=re.MULTILINE)
    assert "followup_holdout_percent" not in without
    path = tmp_path / "dealer.toml"
    path.write_text(without)
    config = load_dealer_config(path)
    assert [r.followup_holdout_percent for r in config.rooftop] == [10, 10]
    for value in ("0", "50"):
        path.write_text(with_ford(value))
        assert load_dealer_config(path).rooftop[1].followup_holdout_percent == int(value)
    load_sample_dealer(database, path)
    with database.sessions() as session:
        ford = session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-ford")).one()
        assert ford.settings.followup_holdout_percent == 50
        group = session.scalars(select(DealerGroup)).one()
        assert group.holdout_key is not None and len(group.holdout_key) == 64
