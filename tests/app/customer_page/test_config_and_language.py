"""The rooftop keys the customer's page adds, and the page in Spanish and French."""

from __future__ import annotations

import copy
import tomllib

import httpx
import pytest
from sqlalchemy import select

from app.config import ConfigError, parse_dealer_config
from app.customer_page.models import CustomerLink
from app.customers.models import Customer
from app.deps import Database
from app.repair_orders.models import RepairOrder
from tests.app.customer_page.conftest import Shop
from tests.conftest import SAMPLE_CONFIG

SAMPLE = tomllib.loads(SAMPLE_CONFIG.read_text())


def with_rooftop(**keys: object) -> dict[str, object]:
    data = copy.deepcopy(SAMPLE)
    data["rooftop"][0].update(keys)
    return data


def test_the_sample_file_documents_the_keys_and_loads() -> None:
    config = parse_dealer_config(SAMPLE, "sample")
    toyota = config.rooftop[0]
    assert toyota.customer_page_days_after_close == 14
    assert toyota.booking.weekdays == frozenset({0, 1, 2, 3, 4, 5})
    assert list(toyota.booking.hour_range) == list(range(8, 16))
    assert toyota.booking.per_hour == 2


@pytest.mark.parametrize(
    ("keys", "where", "problem"),
    [
        ({"booking": {"per_hour": 2, "seats": 3}}, "booking.seats", "unknown key"),
        ({"booking": {"hours": "16:00-08:00"}}, "booking.hours", "start before end"),
        ({"booking": {"hours": "08:30-16:00"}}, "booking.hours", "whole hours"),
        ({"booking": {"days": ["mon", "funday"]}}, "booking.days", "weekdays"),
        ({"booking": {"per_hour": -1}}, "booking.per_hour", "greater than or equal to 0"),
        ({"customer_page_days_after_close": 400}, "customer_page_days_after_close", "365"),
        ({"customer_page_days": 3}, "customer_page_days", "unknown key"),
    ],
)
def test_bad_booking_and_link_keys_name_the_key(
    keys: dict[str, object], where: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_dealer_config(with_rooftop(**keys), "dealer.toml")
    assert f"rooftop[bayview-toyota].{where}" in str(error.value)
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("es", ["Su 2021 Toyota RAV4", "Esperando su aprobación", "Aprobar", "Rechazar", "Llamar"]),
        (
            "fr",
            [
                "Votre 2021 Toyota RAV4",
                "En attente de votre accord",
                "Accepter",
                "Refuser",
                "Appeler",
            ],
        ),
    ],
)
def test_the_page_speaks_the_customers_language(
    shop: Shop, page_client: httpx.Client, database: Database, language: str, words: list[str]
) -> None:
    with database.transaction() as session:
        session.get_one(Customer, shop.customer_id).language = language
    page = page_client.get(f"/c/{shop.token}")
    assert f'lang="{language}"' in page.text
    for word in words:
        assert word in page.text, word


def test_the_status_json_changes_when_the_stage_does(
    shop: Shop, page_client: httpx.Client, database: Database
) -> None:
    first = page_client.get(f"/c/{shop.token}/status.json").json()
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, shop.ro_id)
        ro.stage = "ready_for_pickup"
    second = page_client.get(f"/c/{shop.token}/status.json").json()
    assert first["version"] != second["version"]
    assert (
        'data-stage="ready_for_pickup"' in second["html"] and "Ready for pickup" in second["html"]
    )
    # Polling reads only: it does not count opens.
    with database.transaction() as session:
        assert session.scalars(select(CustomerLink)).one().open_count == 0
