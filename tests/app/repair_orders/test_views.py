"""The repair-order API over real HTTP: tokens, rooftop scoping, health, quarantine."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from app.auth.service import create_api_token
from app.dealers.models import DealerGroup, Rooftop
from app.deps import Database
from app.main import create_app
from app.repair_orders.poller import poll_rooftop
from tests.app.repair_orders.conftest import NOW, ScriptedDms, bridge_record
from tests.support import ServedApp


@pytest.fixture
def api(dealer: Database, settings):  # type: ignore[no-untyped-def]
    with dealer.transaction() as session:
        rooftops = {r.slug: r for r in session.scalars(select(Rooftop))}
        group_id = rooftops["bayview-toyota"].group_id
        tokens = {
            "director": create_api_token(session, group_id=group_id, name="d", role="director"),
            "ford_advisor": create_api_token(
                session,
                group_id=group_id,
                name="a",
                role="advisor",
                rooftops=[rooftops["bayview-ford"]],
            ),
        }
        other = DealerGroup(name="Elsewhere Motors")
        session.add(other)
        session.flush()
        tokens["stranger"] = create_api_token(session, group_id=other.id, name="s", role="admin")
        toyota_id = rooftops["bayview-toyota"].id
    dms = ScriptedDms(
        pages=[
            [
                bridge_record("R1"),
                bridge_record("R2", opened_at="garbage"),
                bridge_record("R3", status="SUBLET"),
            ]
        ]
    )
    poll_rooftop(
        dealer,
        rooftop_id=toyota_id,
        adapter_factory=lambda _r: dms,
        hooks=[],
        clock=lambda: NOW,
        worker_id="w1",
    )
    with ServedApp(create_app(settings, database=dealer)) as served:
        yield served.url, tokens


def get(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=10)


def test_every_route_needs_a_token(api) -> None:  # type: ignore[no-untyped-def]
    base, _ = api
    for path in ("/api/v1/repair-orders", "/api/v1/rooftops/bayview-toyota/poll-health"):
        assert get(base + path).status_code == 401
        assert get(base + path, "pw_not-a-token").status_code == 401


def test_health_quarantine_and_unmapped_for_the_director(api) -> None:  # type: ignore[no-untyped-def]
    base, tokens = api
    token = tokens["director"]
    health = get(f"{base}/api/v1/rooftops/bayview-toyota/poll-health", token).json()
    assert health["healthy"] and health["consecutive_failures"] == 0
    assert health["last_counts"]["quarantined"] == 1 and health["last_counts"]["unmapped"] == 1
    quarantined = get(f"{base}/api/v1/rooftops/bayview-toyota/quarantine", token).json()
    assert [(q["ro_number"], q["payload"]["opened_at"]) for q in quarantined] == [("R2", "garbage")]
    unmapped = get(f"{base}/api/v1/rooftops/bayview-toyota/unmapped-statuses", token).json()
    assert [(u["raw_status"], u["count"], u["example_ro_number"]) for u in unmapped] == [
        ("SUBLET", 1, "R3")
    ]
    ros = get(
        f"{base}/api/v1/repair-orders?rooftop=bayview-toyota&stage=ready_for_pickup", token
    ).json()
    assert [r["ro_number"] for r in ros] == ["R1"]
    detail = get(f"{base}/api/v1/repair-orders/{ros[0]['id']}", token).json()
    assert [line["amount_cents"] for line in detail["lines"]] == [8995, 41200]
    assert detail["events"][0]["to_stage"] == "ready_for_pickup"
    assert detail["customer_name"] == "Sam Lee" and detail["vehicle"]["make"] == "Toyota"
    assert get(f"{base}/api/v1/repair-orders?stage=parked", token).status_code == 422


def test_other_rooftops_and_groups_are_404(api) -> None:  # type: ignore[no-untyped-def]
    base, tokens = api
    director_view = get(f"{base}/api/v1/repair-orders", tokens["director"]).json()
    ro_id = director_view[0]["id"]
    for who in ("ford_advisor", "stranger"):
        token = tokens[who]
        assert get(f"{base}/api/v1/rooftops/bayview-toyota/poll-health", token).status_code == 404
        assert get(f"{base}/api/v1/rooftops/bayview-toyota/quarantine", token).status_code == 404
        assert get(f"{base}/api/v1/repair-orders?rooftop=bayview-toyota", token).status_code == 404
        assert get(f"{base}/api/v1/repair-orders/{ro_id}", token).status_code == 404
        assert get(f"{base}/api/v1/repair-orders", token).json() == []
    assert (
        get(f"{base}/api/v1/rooftops/bayview-ford/poll-health", tokens["ford_advisor"]).status_code
        == 200
    )
