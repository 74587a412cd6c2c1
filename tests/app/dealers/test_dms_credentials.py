"""`pitwall config load` checks each vendor's credentials under the vendor's own names:
a missing or empty one is a one-line error naming the file and the key, never its value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import load_dealer_config
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database

SECRET = "dealer-file-secret-5be1c0"

ROOFTOP = """
[group]
name = "Credentials Auto Group"

[[rooftop]]
slug = "creds"
name = "Credentials Motors"
timezone = "America/Los_Angeles"
sms_from = "+14155550100"

[rooftop.dms]
{dms}
"""

VALID = {
    "cdk": f'kind = "cdk"\nclient_id = "api-key"\nclient_secret = "{SECRET}"\n'
    'subscription_id = "sub-1"',
    "dealertrack": 'kind = "dealertrack"\nenterprise_code = "ZE"\ncompany_number = "ZE7"\n'
    f'server_name = "ot"\nusername = "pitwall"\npassword = "{SECRET}"',
    "tekion": f'kind = "tekion"\napp_id = "app"\nsecret_key = "{SECRET}"\n'
    'dealer_id = "techmotors_4_0"',
    "star": 'kind = "star"\nurl = "https://middleware.example/star"\n'
    f'token = "{SECRET}"\nline_status_map = {{ "DECLINED" = "declined" }}',
}


def pitwall_config_load(database_url: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "config", "load", str(path)],
        env={**os.environ, "PITWALL_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("kind", sorted(VALID))
def test_each_vendor_kind_loads_under_the_vendors_names(
    kind: str, database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "dealer.toml"
    path.write_text(ROOFTOP.format(dms=VALID[kind]))
    with database.transaction() as session:
        apply_dealer_config(session, config=load_dealer_config(path), source=str(path))
    with database.sessions() as session:
        rooftop = session.scalars(select(Rooftop)).one()
        assert rooftop.settings.dms.kind == kind


@pytest.mark.parametrize(
    ("kind", "change", "key", "problem"),
    [
        ("cdk", ("subscription_id = \"sub-1\"", ""), "dms.subscription_id", "is missing"),
        ("cdk", (f'"{SECRET}"', '""'), "dms.client_secret", "expected a non-empty string"),
        ("dealertrack", (f'password = "{SECRET}"', f"password = {7 * 10**7}"), "dms.password",
         "expected a non-empty string"),
        ("dealertrack", ('server_name = "ot"', ""), "dms.server_name", "is missing"),
        ("tekion", ('dealer_id = "techmotors_4_0"', 'dealerId = "x"'), "dms.dealer_id",
         "is missing"),
        ("star", ('url = "https://middleware.example/star"', ""), "dms.path",
         "give either path (a drop folder) or url (an HTTP endpoint)"),
    ],
)  # fmt: skip
def test_a_credential_problem_is_one_line_naming_file_and_key_never_the_value(
    kind: str,
    change: tuple[str, str],
    key: str,
    problem: str,
    database_url: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "dealer.toml"
    path.write_text(ROOFTOP.format(dms=VALID[kind].replace(*change)))
    done = pitwall_config_load(database_url, path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line == f"error: {path}: rooftop[creds].{key}: {problem}"
    assert SECRET not in done.stdout + done.stderr
