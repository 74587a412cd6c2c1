"""Fixtures for the web app: the sample dealer, a second dealer group, one login per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher

from app.auth import passwords
from app.auth.service import create_api_token, create_user
from app.config import Settings, parse_dealer_config
from app.conversations.models import InboundMessage, Task
from app.customers.models import Customer, CustomerPhone, Phone
from app.db import utcnow
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config, rooftop_by_slug, single_group
from app.deps import Database
from app.main import create_app
from app.repair_orders.models import RepairOrder, Vehicle
from tests.support import ServedApp, load_sample_dealer

PASSWORD = "correct horse battery"

OTHER_GROUP = {
    "group": {"name": "Harbor Motors"},
    "rooftop": [
        {
            "slug": "harbor-honda",
            "name": "Harbor Honda",
            "timezone": "America/New_York",
            "sms_from": "+12125550100",
            "dms": {"kind": "simulator"},
            "status_map": {"OPEN": "checked_in"},
        }
    ],
}


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with tiny parameters: the same code path, a fraction of the CPU (2 shared cores)."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@dataclass
class World:
    """Two groups, three rooftops, a login per role and one RO + task per rooftop."""

    toyota_id: int
    ford_id: int
    harbor_id: int
    ro: dict[str, int]  # rooftop slug -> RO id
    task: dict[str, int]
    customer: dict[str, int]
    admin_token: str


def add_repair_order(
    database: Database,
    *,
    rooftop_id: int,
    ro_number: str,
    first_name: str,
    stage: str = "in_repair",
) -> tuple[int, int]:
    """An open RO with a textable customer; returns (ro id, customer id)."""
    with database.transaction() as session:
        rooftop = session.get(Rooftop, rooftop_id)
        assert rooftop is not None
        customer = Customer(group_id=rooftop.group_id, first_name=first_name, last_name="Lee")
        phone = Phone(
            group_id=rooftop.group_id,
            e164=f"+1415555{ro_number[-4:]:0>4}",
            as_typed="(415) 555-0142",
            kind="mobile",
            textable=True,
        )
        session.add_all([customer, phone])
        session.flush()
        session.add(CustomerPhone(customer_id=customer.id, phone_id=phone.id, is_primary=True))
        vehicle = Vehicle(
            group_id=rooftop.group_id,
            vin=None,
            year=2021,
            make="Toyota",
            model="RAV4",
            customer_id=customer.id,
        )
        session.add(vehicle)
        session.flush()
        now = utcnow()
        ro = RepairOrder(
            rooftop_id=rooftop_id,
            ro_number=ro_number,
            customer_id=customer.id,
            vehicle_id=vehicle.id,
            advisor_name="Dana Ruiz",
            raw_status="WIP",
            stage=stage,
            opened_at=now - timedelta(hours=2),
            promised_at=now + timedelta(hours=3),
            content_hash="x",
        )
        session.add(ro)
        session.flush()
        return ro.id, customer.id


def add_task(
    database: Database, *, rooftop_id: int, ro_id: int, customer_id: int, body: str
) -> int:
    with database.transaction() as session:
        rooftop = session.get(Rooftop, rooftop_id)
        customer = session.get(Customer, customer_id)
        assert rooftop is not None and customer is not None
        inbound = InboundMessage(
            provider_sid=f"SM{ro_id:032d}",
            group_id=rooftop.group_id,
            rooftop_id=rooftop_id,
            channel="sms",
            from_address="+14155550142",
            to_address=rooftop.sms_from or "",
            body=body,
            customer_id=customer_id,
            repair_order_id=ro_id,
            intent="free_text",
        )
        session.add(inbound)
        session.flush()
        task = Task(
            rooftop_id=rooftop_id,
            customer_id=customer_id,
            repair_order_id=ro_id,
            inbound_message_id=inbound.id,
            kind="needs_reply",
            summary=f"{customer.display_name}: {body}",  # as app.conversations writes it
            created_at=utcnow() - timedelta(minutes=12),
        )
        session.add(task)
        session.flush()
        return task.id


@pytest.fixture
def world(database: Database) -> World:
    load_sample_dealer(database)
    with database.transaction() as session:
        apply_dealer_config(session, config=parse_dealer_config(OTHER_GROUP, "test"), source="test")
    with database.transaction() as session:
        bayview = single_group(session, "Bayview Auto Group")
        harbor = single_group(session, "Harbor Motors")
        toyota = rooftop_by_slug(session, group_id=bayview.id, slug="bayview-toyota")
        ford = rooftop_by_slug(session, group_id=bayview.id, slug="bayview-ford")
        honda = rooftop_by_slug(session, group_id=harbor.id, slug="harbor-honda")
        assert toyota and ford and honda
        for email, role, rooftops in (
            ("toyota.advisor@bayview.example", "advisor", [toyota]),
            ("ford.advisor@bayview.example", "advisor", [ford]),
            ("director@bayview.example", "director", []),
            ("admin@bayview.example", "admin", []),
        ):
            create_user(
                session,
                group_id=bayview.id,
                email=email,
                password=PASSWORD,
                role=role,
                rooftops=rooftops,
            )
        create_user(
            session,
            group_id=harbor.id,
            email="director@harbor.example",
            password=PASSWORD,
            role="director",
            rooftops=[],
        )
        admin_token = create_api_token(session, group_id=bayview.id, name="t", role="admin")
        ids = {"bayview-toyota": toyota.id, "bayview-ford": ford.id, "harbor-honda": honda.id}
    ro: dict[str, int] = {}
    task: dict[str, int] = {}
    customer: dict[str, int] = {}
    for n, (slug, rooftop_id) in enumerate(ids.items()):
        ro[slug], customer[slug] = add_repair_order(
            database, rooftop_id=rooftop_id, ro_number=f"R{1001 + n}", first_name=f"Sam{n}"
        )
        task[slug] = add_task(
            database,
            rooftop_id=rooftop_id,
            ro_id=ro[slug],
            customer_id=customer[slug],
            body=f"When is my car ready? ({slug})",
        )
    return World(
        ids["bayview-toyota"],
        ids["bayview-ford"],
        ids["harbor-honda"],
        ro,
        task,
        customer,
        admin_token,
    )


@pytest.fixture
def served(settings: Settings, database: Database) -> Iterator[ServedApp]:
    with ServedApp(create_app(settings, database=database)) as served:
        yield served


@pytest.fixture
def client(served: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as client:
        yield client


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )


@contextmanager
def logged_in(served: ServedApp, email: str) -> Iterator[httpx.Client]:
    """An HTTP client with a logged-in session for `email`."""
    with httpx.Client(base_url=served.url, follow_redirects=False, timeout=10) as client:
        response = log_in(client, email)
        assert response.status_code == 303, response.text
        yield client
