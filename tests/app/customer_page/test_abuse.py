"""Links that lead nowhere, guessing, other customers' data, and bad uploads."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.customer_page import ratelimit
from app.customer_page.models import CustomerLink, LinePhoto
from app.customer_page.tokens import new_token
from app.customers.models import Customer
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.main import create_app
from app.repair_orders.models import RepairOrder
from tests.app.customer_page.conftest import Shop, add_lines, new_link
from tests.app.web.conftest import logged_in
from tests.support import ServedApp

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def assert_plain_404(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert "Traceback" not in response.text
    assert "Maria" not in response.text and "RAV4" not in response.text
    assert "Front brake pads" not in response.text


def test_an_unknown_link_is_a_plain_404(shop: Shop, page_client: httpx.Client) -> None:
    for token in (new_token(), "x", "../../etc/passwd", "A" * 400):
        response = page_client.get(f"/c/{token}")
        assert response.status_code == 404, token
        assert "Traceback" not in response.text
    response = page_client.get(f"/c/{new_token()}", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert "Este enlace ya no funciona" in response.text
    assert "tel:" not in response.text  # three stores: which one's number is unknown


def test_an_unknown_link_at_a_one_store_deployment_gives_its_number(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    with database.transaction() as session:
        for rooftop in session.scalars(select(Rooftop).where(Rooftop.id != shop.rooftop_id)):
            rooftop.active = False
    response = page_client.get(f"/c/{new_token()}")
    assert response.status_code == 404 and 'href="tel:+14155550199"' in response.text


def test_an_expired_link_answers_in_the_customers_language_with_the_stores_number(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, shop.ro_id)
        ro.stage, ro.closed_at = "closed", utcnow() - timedelta(days=30)
        session.get_one(Customer, shop.customer_id).language = "fr"
        # Sent while the RO was open: it lived 14 days (the rooftop's default) past the close.
        session.scalars(select(CustomerLink)).one().created_at = utcnow() - timedelta(days=31)
    response = page_client.get(f"/c/{shop.token}")
    assert_plain_404(response)
    assert "Ce lien ne fonctionne plus" in response.text
    assert 'href="tel:+14155550199"' in response.text  # bayview-toyota's service desk


def test_a_link_still_opens_within_the_days_after_close(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, shop.ro_id)
        ro.stage, ro.closed_at = "closed", utcnow() - timedelta(days=13)
    assert page_client.get(f"/c/{shop.token}").status_code == 200


def test_a_revoked_link_shows_nothing(
    shop: Shop, served: ServedApp, page_client: httpx.Client, database: Database
) -> None:
    with logged_in(served, "toyota.advisor@bayview.example") as advisor:
        panel = advisor.get(f"/repair-orders/{shop.ro_id}/customer-page")
        assert "Links sent: 1" in panel.text
        csrf = panel.text.split('name="csrf_token" value="')[1].split('"')[0]
        revoked = advisor.post(
            f"/repair-orders/{shop.ro_id}/customer-page/revoke", data={"csrf_token": csrf}
        )
        assert revoked.status_code == 303
    assert_plain_404(page_client.get(f"/c/{shop.token}"))
    assert page_client.get(f"/c/{shop.token}/status.json").status_code == 404


def test_an_advisor_of_another_rooftop_cannot_revoke(
    shop: Shop, served: ServedApp, page_client: httpx.Client
) -> None:
    with logged_in(served, "ford.advisor@bayview.example") as advisor:
        assert advisor.get(f"/repair-orders/{shop.ro_id}/customer-page").status_code == 404
    assert page_client.get(f"/c/{shop.token}").status_code == 200


def test_a_link_dies_when_the_repair_order_changes_customer(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    other_ro = shop.world.ro["bayview-toyota"]
    with database.transaction() as session:
        other = session.get_one(RepairOrder, other_ro)
        session.get_one(RepairOrder, shop.ro_id).customer_id = other.customer_id
    assert_plain_404(page_client.get(f"/c/{shop.token}"))


def test_guessing_tokens_is_slowed_down(shop: Shop, page_client: httpx.Client) -> None:
    codes = [page_client.get(f"/c/{new_token()}").status_code for _ in range(12)]
    assert codes[:10] == [404] * 10 and codes[-1] == 429
    # Once over the limit, even a real link waits: the guesser learns nothing.
    assert page_client.get(f"/c/{shop.token}").status_code == 429


def test_one_link_is_rate_limited(
    shop: Shop, page_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "PER_TOKEN_PER_MINUTE", 3)
    codes = [page_client.get(f"/c/{shop.token}/status.json").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_photos_are_served_only_through_a_link_to_their_own_repair_order(
    shop: Shop, media_settings: Settings, database: Database
) -> None:
    with ServedApp(create_app(media_settings, database=database)) as served:
        with logged_in(served, "toyota.advisor@bayview.example") as advisor:
            panel = advisor.get(f"/repair-orders/{shop.ro_id}/customer-page")
            csrf = panel.text.split('name="csrf_token" value="')[1].split('"')[0]
            url = f"/repair-orders/{shop.ro_id}/lines/{shop.lines['B']}/photos"
            added = advisor.post(
                url, data={"csrf_token": csrf}, files={"photo": ("pads.jpg", JPEG, "image/jpeg")}
            )
            assert added.status_code == 303, added.text
            note = advisor.post(
                f"/repair-orders/{shop.ro_id}/lines/{shop.lines['B']}/notes",
                data={"csrf_token": csrf, "note": "Pads at 2 mm, rotors scored"},
            )
            assert note.status_code == 303
            # A PNG named .jpg is taken for what it is; a text file named .png is not.
            refused = advisor.post(
                url,
                data={"csrf_token": csrf},
                files={"photo": ("pads.png", b"hello, not a photo", "image/png")},
            )
            assert refused.status_code == 422
            assert "only JPEG, PNG or WebP" in refused.text
            too_big = advisor.post(
                url,
                data={"csrf_token": csrf},
                files={"photo": ("big.png", PNG + b"\x00" * (5 * 1024 * 1024), "image/png")},
            )
            assert too_big.status_code == 422 and "the limit is 5 MB" in too_big.text
        with database.transaction() as session:
            photo = session.scalars(select(LinePhoto)).one()
            assert photo.content_type == "image/jpeg"
        with httpx.Client(base_url=served.url, timeout=10) as http:
            page = http.get(f"/c/{shop.token}")
            assert "Pads at 2 mm, rotors scored" in page.text
            assert f"/c/{shop.token}/photos/{photo.id}" in page.text
            shown = http.get(f"/c/{shop.token}/photos/{photo.id}")
            assert shown.status_code == 200 and shown.content == JPEG
            # Another customer's link cannot reach this photo.
            other_ro = shop.world.ro["bayview-toyota"]
            add_lines(database, other_ro, [("A", "X", "Other work", 100, "pending")])
            other = new_link(database, other_ro)
            assert http.get(f"/c/{other}/photos/{photo.id}").status_code == 404
            assert http.get(f"/c/{new_token()}/photos/{photo.id}").status_code == 404
