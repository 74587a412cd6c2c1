"""A repair order waiting on its customer's approval, and a link to its page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from app.config import Settings
from app.customer_page.links import mint_link
from app.customers.models import Customer
from app.db import utcnow
from app.deps import Database
from app.repair_orders.models import RepairOrder, RoEvent, RoLine
from tests.app.web.conftest import (  # noqa: F401 - shared fixtures
    World,
    add_repair_order,
    cheap_password_hashing,
    client,
    served,
    world,
)
from tests.support import ServedApp


@dataclass
class Shop:
    world: World
    ro_id: int
    customer_id: int
    rooftop_id: int
    lines: dict[str, int]  # line code -> id
    token: str


@pytest.fixture
def media_settings(settings: Settings, tmp_path: object) -> Settings:
    return settings.model_copy(update={"media_dir": str(tmp_path)})


def add_lines(
    database: Database, ro_id: int, lines: list[tuple[str, str, str, int, str]]
) -> dict[str, int]:
    """(code, op code, description, cents, status) lines on an RO; returns code -> id."""
    with database.transaction() as session:
        added = {}
        for code, op, description, cents, status in lines:
            line = RoLine(
                repair_order_id=ro_id,
                line_code=code,
                op_code=op,
                description=description,
                amount_cents=cents,
                status=status,
            )
            session.add(line)
            session.flush()
            added[code] = line.id
        return added


def new_link(database: Database, ro_id: int, purpose: str = "status") -> str:
    with database.transaction() as session:
        ro = session.get_one(RepairOrder, ro_id)
        customer = session.get_one(Customer, ro.customer_id)
        _link, url = mint_link(session, ro=ro, customer=customer, purpose=purpose, now=utcnow())
        return url.rsplit("/", 1)[1]


@pytest.fixture
def shop(world: World, database: Database) -> Shop:  # noqa: F811 - the shared fixture
    rooftop_id = world.toyota_id
    ro_id, customer_id = add_repair_order(
        database,
        rooftop_id=rooftop_id,
        ro_number="R2001",
        first_name="Maria",
        stage="awaiting_approval",
    )
    with database.transaction() as session:
        customer = session.get_one(Customer, customer_id)
        customer.email = "maria.private@example.com"
        customer.last_name = "Quintero-Privado"
        now = utcnow()
        session.add_all(
            [
                RoEvent(
                    repair_order_id=ro_id,
                    kind="stage",
                    to_stage="checked_in",
                    at=now - timedelta(hours=2),
                ),
                RoEvent(
                    repair_order_id=ro_id,
                    kind="stage",
                    from_stage="checked_in",
                    to_stage="awaiting_approval",
                    at=now - timedelta(minutes=30),
                ),
            ]
        )
    lines = add_lines(
        database,
        ro_id,
        [
            ("A", "OILCHG", "Oil and filter", 8995, "approved"),
            ("B", "BRKPAD", "Front brake pads", 41200, "pending"),
            ("C", "WIPER", "Wiper blades", 3995, "pending"),
        ],
    )
    return Shop(world, ro_id, customer_id, rooftop_id, lines, new_link(database, ro_id))


@pytest.fixture
def page_client(served: ServedApp) -> Iterator[httpx.Client]:  # noqa: F811
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as http:
        yield http
