"""`pitwall doctor` makes one real call per vendor DMS (a token, then one lookup) and, when
it fails, names the step, the vendor's refusal and what the dealer must check."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import load_dealer_config
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.ops.doctor import check_dms, load_rooftops
from app.ops.findings import Finding
from app.repair_orders.jobs import AdapterCache
from tests.integrations.dms.vendor_worlds import (
    SECRET,
    WORLDS,
    CdkWorld,
    DealertrackWorld,
    StarWorld,
    TekionWorld,
    VendorWorld,
)


@pytest.fixture
def worlds(database: Database, tmp_path: Path) -> Iterator[dict[str, VendorWorld]]:
    worlds = {kind: make() for kind, make in WORLDS.items()}
    rooftops = "".join(
        f"""
[[rooftop]]
slug = "doctor-{kind}"
name = "Doctor {kind}"
timezone = "America/Los_Angeles"
sms_from = "+1415555{n:04d}"

[rooftop.dms]
{world.dms_table()}
"""
        for n, (kind, world) in enumerate(worlds.items(), start=100)
    )
    toml = tmp_path / "dealer.toml"
    toml.write_text('[group]\nname = "Doctor Auto Group"\n' + rooftops)
    with database.transaction() as session:
        apply_dealer_config(session, config=load_dealer_config(toml), source=str(toml))
    try:
        yield worlds
    finally:
        for world in worlds.values():
            world.close_server()


def doctor_dms(database: Database) -> dict[str, Finding]:
    adapters = AdapterCache()
    try:
        findings = check_dms(load_rooftops(database), adapters)
    finally:
        adapters.close()
    return {f.rooftop.removeprefix("doctor-"): f for f in findings}


def test_every_vendor_answers_the_doctors_token_and_lookup(
    worlds: dict[str, VendorWorld], database: Database
) -> None:
    findings = doctor_dms(database)
    assert {kind: f.status for kind, f in findings.items()} == {
        "cdk": "ok",
        "dealertrack": "ok",
        "tekion": "ok",
        "star": "ok",
    }
    cdk = worlds["cdk"]
    assert isinstance(cdk, CdkWorld)
    assert cdk.fake.tokens_issued == 1 and [q for q, _ in cdk.fake.queries] == ["open/delta"]
    tekion = worlds["tekion"]
    assert isinstance(tekion, TekionWorld) and tekion.fake.tokens_issued == 1


def test_each_refusal_is_named_with_what_the_dealer_must_check(
    worlds: dict[str, VendorWorld], database: Database
) -> None:
    cdk, dealertrack, tekion, star = (worlds[k] for k in ("cdk", "dealertrack", "tekion", "star"))
    assert isinstance(cdk, CdkWorld) and isinstance(dealertrack, DealertrackWorld)
    assert isinstance(tekion, TekionWorld) and isinstance(star, StarWorld)
    cdk.fake.subscription_id = "another-dealer"  # the dealer has not activated the app
    dealertrack.fake.dealer["CompanyNumber"] = "XX9"  # no vendor access to this company
    tekion.fake.secret_key = "rotated-secret"  # our app's secret changed
    star.fake.token = "rotated-token"
    findings = doctor_dms(database)
    assert {f.status for f in findings.values()} == {"problem"}
    assert findings["cdk"].detail.startswith(
        "cdk refused the credentials: lookup GET http://127.0.0.1:"
    )
    assert "403 unknown Subscription-Id" in findings["cdk"].detail
    assert "subscription_id is the dealer's subscription" in findings["cdk"].fix
    assert "error 311, the dealer has not granted this vendor access" in (
        findings["dealertrack"].detail
    )
    assert "enterprise_code, company_number and server_name" in findings["dealertrack"].fix
    assert findings["tekion"].detail.startswith(
        "tekion refused the credentials: token request failed: authentication failed: 401"
    )
    assert "app_id / secret_key" in findings["tekion"].fix
    assert "star refused the credentials: GET http://127.0.0.1:" in findings["star"].detail
    for finding in findings.values():
        assert SECRET not in finding.detail + finding.fix
