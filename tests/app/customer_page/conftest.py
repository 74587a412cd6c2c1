"""A repair order waiting on its customer's approval, and a link to its page."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from app.config import Settings
from app.customer_page.links import mint_link
from app.customer_page.photos import photo_store
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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 over real HTTP (moto's server), one per test process."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new private bucket on the local S3, reached through boto3's own environment."""
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "pitwall-test",
        "AWS_SECRET_ACCESS_KEY": "pitwall-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"photos-{secrets.token_hex(4)}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield bucket
    photo_store.cache_clear()  # its client was made with this test's environment


@pytest.fixture(params=["disk", "s3"])
def media_settings(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: object
) -> Settings:
    """Photos on disk, and in an S3 bucket (PITWALL_MEDIA_DIR=s3://bucket/prefix)."""
    if request.param == "disk":
        return settings.model_copy(update={"media_dir": str(tmp_path)})
    bucket = request.getfixturevalue("s3_bucket")
    return settings.model_copy(update={"media_dir": f"s3://{bucket}/bayview"})


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
