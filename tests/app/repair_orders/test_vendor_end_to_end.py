"""Each vendor adapter end to end, against its fake over real HTTP: a new RO, a changed
one, a closed one and a declined line travel through the worker's polls into texts at the
Twilio sandbox, a follow-up, and the declined-work recovery report.

The story, for every vendor: RO 1 opens (oil change approved, brakes declined) and its
customer is texted; it moves to ready and they are texted again; it closes, the declined
brakes are followed up at close; RO 2 opens for the same VIN with the brakes approved, and
the report counts the $412 declined, followed up and recovered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import Settings, load_dealer_config
from app.db import utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.repair_orders.jobs import AdapterCache
from app.repair_orders.models import QuarantinedRecord, RepairOrder, RoLine
from app.reports.service import declined_recovery
from app.wiring import change_hooks
from app.worker import Worker
from integrations.twilio.gateway import TwilioGateway
from tests.app.messaging.conftest import (  # noqa: F401  (fixtures)
    Clock,
    app_port,
    app_settings,
    gateway,
    sandbox,
    served_app,
)
from tests.integrations.dms.vendor_worlds import KINDS, WORLDS, Line, VendorWorld
from tests.support import wait_until

PHONE = "4155550142"
E164 = "+14155550142"
VIN = "JTMW1RFV5MD012345"


def dealer_toml(world: VendorWorld) -> str:
    return f"""
[group]
name = "Vendor Auto Group"

[[rooftop]]
slug = "vendor-{world.kind}"
name = "Vendor {world.kind}"
timezone = "America/Los_Angeles"
sms_from = "+14155550100"
quiet_hours = "off"
daily_cap = 10
followup_days = [0]
followup_holdout_percent = 0
followups_default = true

[rooftop.dms]
{world.dms_table()}
[rooftop.status_map]
{world.status_map()}
"""


@pytest.fixture(params=KINDS)
def world(request: pytest.FixtureRequest) -> Iterator[VendorWorld]:
    world = WORLDS[request.param]()
    try:
        yield world
    finally:
        world.close_server()


@pytest.fixture
def worker(
    world: VendorWorld, database: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Worker]:
    with world_worker(world, database, tmp_path, request, Clock()) as worker:
        yield worker


@contextmanager
def world_worker(
    world: VendorWorld,
    database: Database,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    clock: Clock,
) -> Iterator[Worker]:
    """The world's dealer file loaded and a worker polling its fake, texting the sandbox."""
    # The messaging fixtures: the app served for Twilio's callbacks, the sandbox, a gateway.
    served: Settings = request.getfixturevalue("app_settings")
    twilio: TwilioGateway = request.getfixturevalue("gateway")
    toml = tmp_path / "dealer.toml"
    toml.write_text(dealer_toml(world))
    with database.transaction() as session:
        apply_dealer_config(session, config=load_dealer_config(toml), source=str(toml))
    with Worker(
        database,
        public_url=served.public_url,
        gateway=twilio,
        adapters=AdapterCache(),
        hooks=change_hooks(),
        clock=clock,
    ) as worker:
        yield worker


def poll(worker: Worker) -> None:
    """One poll of the rooftop, then everything due: follow-ups planned, texts sent."""
    (result,) = worker.poll_every_rooftop()
    assert result.outcome == "ok", result.error
    worker.followups()
    worker.dispatch_until_idle()


def texts(database: Database) -> list[tuple[str, str | None, str]]:
    """(kind, stage, RO number) of every text that reached Twilio, oldest first."""
    with database.sessions() as session:
        rows = session.execute(
            select(OutboundMessage.kind, OutboundMessage.stage, RepairOrder.ro_number)
            .join(RepairOrder, RepairOrder.id == OutboundMessage.repair_order_id)
            .where(OutboundMessage.state.in_(("queued", "sent", "delivered")))
            .where(OutboundMessage.to_address == E164)
            .order_by(OutboundMessage.id)
        ).all()
    return [(kind, stage, number) for kind, stage, number in rows]


def delivered(database: Database) -> int:
    with database.sessions() as session:
        states = session.scalars(
            select(OutboundMessage.state).where(OutboundMessage.to_address == E164)
        ).all()
    return sum(state == "delivered" for state in states)


def test_new_changed_closed_and_declined_ros_reach_texts_and_the_recovery_report(
    world: VendorWorld, worker: Worker, database: Database
) -> None:
    world.open(
        "5001",
        phone=PHONE,
        vin=VIN,
        lines=[Line("1", "OILCHG", "89.95", "approved"), Line("2", "BRKPAD", "412.00", "declined")],
    )
    poll(worker)
    assert texts(database) == [("status", "checked_in", "5001")]

    world.move("5001", "ready")
    poll(worker)
    assert texts(database)[-1] == ("status", "ready_for_pickup", "5001")
    poll(worker)  # an unchanged RO: nothing more
    assert len(texts(database)) == 2

    world.close("5001")
    poll(worker)
    with database.sessions() as session:
        ro = session.scalars(select(RepairOrder).where(RepairOrder.ro_number == "5001")).one()
        lines = {
            line.op_code: (line.status, line.amount_cents)
            for line in session.scalars(select(RoLine).where(RoLine.repair_order_id == ro.id))
        }
    assert ro.stage == "closed" and ro.closed_at is not None
    assert lines["BRKPAD"] == ("declined", 41200)
    assert lines["OILCHG"][1] == 8995
    assert texts(database)[-1] == ("followup", None, "5001")

    # The customer's phone has the follow-up before they come back for the brakes.
    wait_until(lambda: delivered(database) == 3, "Twilio's delivery callbacks")
    world.open("5002", phone=PHONE, vin=VIN, lines=[Line("1", "BRKPAD", "412.00", "approved")])
    poll(worker)
    assert texts(database)[-1] == ("status", "checked_in", "5002")

    wait_until(lambda: delivered(database) == 4, "Twilio's delivery callbacks")
    with database.sessions() as session:
        group = session.scalars(select(DealerGroup)).one()
        rooftops = list(session.scalars(select(Rooftop)))
        report = declined_recovery(
            session, group=group, rooftops=rooftops, since=(utcnow() - timedelta(days=1)).date()
        )
        quarantined = session.scalars(select(QuarantinedRecord)).all()
    assert (report.declined_cents, report.followed_up_cents, report.recovered_cents) == (
        41200,
        41200,
        41200,
    )
    assert report.recovered_after_followup_cents == 41200
    assert quarantined == []
