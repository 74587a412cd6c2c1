"""The customer's page: what a link opens, and what it never shows."""

from __future__ import annotations

import httpx

from app.customer_page.models import CustomerLink
from app.deps import Database
from tests.app.customer_page.conftest import Shop


def test_the_link_opens_the_status_with_no_login(shop: Shop, page_client: httpx.Client) -> None:
    response = page_client.get(f"/c/{shop.token}")
    assert response.status_code == 200, response.text
    assert "Your 2021 Toyota RAV4" in response.text
    assert "Waiting for your approval" in response.text
    assert "Your advisor: Dana" in response.text
    assert 'href="tel:+1' in response.text and 'href="sms:+1' in response.text
    assert "Front brake pads" in response.text and "$412.00" in response.text


def test_the_page_shows_no_phone_email_or_last_name(shop: Shop, page_client: httpx.Client) -> None:
    text = page_client.get(f"/c/{shop.token}").text
    assert "maria.private@example.com" not in text
    assert "Quintero" not in text and "Lee" not in text
    assert "555-0142" not in text and "+14155552001" not in text
    assert "Ruiz" not in text  # the advisor's first name only


def test_a_get_counts_the_first_open_and_changes_nothing_else(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    page_client.get(f"/c/{shop.token}")
    page_client.get(f"/c/{shop.token}")
    with database.transaction() as session:
        link = session.query(CustomerLink).one()
        assert link.open_count == 2 and link.first_opened_at is not None
