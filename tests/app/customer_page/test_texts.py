"""Every status text and follow-up ends with its own link to the customer's page."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from app.customer_page.models import CustomerLink
from app.customer_page.tokens import token_hash
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.followups.jobs import run_followups
from app.messaging.models import OutboundMessage
from app.repair_orders.service import apply_record
from app.wiring import change_hooks
from integrations.dms.base import DmsCustomer, DmsLine, DmsPhone, DmsVehicle, RepairOrderRecord
from tests.app.web.conftest import World

LINK = re.compile(r"^http://127\.0\.0\.1:8000/c/([A-Za-z0-9_-]{22})$", re.MULTILINE)
OPENED = utcnow().replace(microsecond=0) - timedelta(hours=1)


def record(status: str, *lines: DmsLine, language: str = "es") -> RepairOrderRecord:
    return RepairOrderRecord(
        ro_number="R5001",
        raw_status=status,
        opened_at=OPENED,
        promised_at=OPENED + timedelta(hours=5),
        closed_at=utcnow() if status == "CLOSED" else None,
        advisor_name="Dana Ruiz",
        customer=DmsCustomer(
            external_id="C-5001",
            first_name="Lucía",
            last_name="Gómez",
            phones=(DmsPhone("(415) 555-0177", "mobile"),),
            language=language,
            sms_consent=True,
            marketing_consent=True,
        ),
        vehicle=DmsVehicle(vin="JTMW1RFV5MD054321", year=2020, make="Toyota", model="Camry"),
        lines=lines,
    )


def poll(database: Database, world: World, rec: RepairOrderRecord) -> None:
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, world.toyota_id)
        apply_record(session, rooftop=rooftop, record=rec, hooks=change_hooks(), at=utcnow())


def bodies(database: Database) -> list[str]:
    with database.transaction() as session:
        return [
            m.body or ""
            for m in session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.kind.in_(("status", "followup")))
                .order_by(OutboundMessage.id)
            )
        ]


def test_each_status_text_carries_its_own_link_that_opens_the_page(
    world: World, database: Database, page_client: httpx.Client
) -> None:
    poll(database, world, record("OPEN"))
    poll(database, world, record("WIP"))
    texts = bodies(database)
    assert len(texts) == 2
    tokens = [LINK.search(text) for text in texts]  # a line of its own
    assert all(tokens), texts
    assert tokens[0].group(1) != tokens[1].group(1)  # type: ignore[union-attr]
    with database.transaction() as session:
        links = session.scalars(select(CustomerLink).order_by(CustomerLink.id)).all()
        messages = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        assert [link.outbound_message_id for link in links] == [m.id for m in messages]
        # Only the hash is stored.
        assert links[0].token_hash == token_hash(tokens[0].group(1))  # type: ignore[union-attr]
        assert all(tokens[0].group(1) not in (link.token_hash or "") for link in links)  # type: ignore[union-attr]
    page = page_client.get(f"/c/{tokens[0].group(1)}")  # type: ignore[union-attr]
    assert page.status_code == 200
    assert 'lang="es"' in page.text and "En reparación" in page.text  # the customer's language
    assert "Gómez" not in page.text


def test_a_follow_up_links_to_the_declined_work(
    world: World, database: Database, page_client: httpx.Client
) -> None:
    with database.transaction() as session:
        rooftop = session.get_one(Rooftop, world.toyota_id)
        rooftop.config = {**rooftop.config, "followup_days": [0], "followup_holdout_percent": 0}
    declined = DmsLine("B", "BRKPAD", "Pastillas de freno", 41200, "declined")
    poll(database, world, record("WIP", declined))
    poll(database, world, record("CLOSED", declined))
    assert run_followups(database, clock=utcnow) == 1
    followup = bodies(database)[-1]
    token = LINK.search(followup)
    assert token, followup
    page = page_client.get(f"/c/{token.group(1)}")
    assert "Trabajo que rechazó" in page.text and "Pastillas de freno" in page.text
    assert "$412.00" in page.text and "Agendar" in page.text
