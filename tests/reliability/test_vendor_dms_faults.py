"""The DMS faults of `test_dms_faults.py` for every vendor adapter, each against its fake
over real HTTP through the worker's own poll: a DMS slower than the adapter's timeout, a
429 with Retry-After, 5xx (briefly, then for good), and a malformed record quarantined
beside the good ones. The poll recovers from what is brief, names the rooftop and the DMS
when it gives up, keeps its cursor, and never writes a credential into its health or logs.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import Settings, load_dealer_config
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.ops.logging import configure_logging
from app.repair_orders.jobs import AdapterCache
from app.repair_orders.models import DmsPollState, QuarantinedRecord, RepairOrder
from app.repair_orders.poller import PollResult
from app.wiring import change_hooks
from app.worker import Worker
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.app.messaging.conftest import Clock
from tests.integrations.dms.vendor_worlds import KINDS, SECRET, WORLDS, Line, VendorWorld

TIMEOUT = 0.5  # seconds: the adapter's timeout_seconds


def dealer_toml(world: VendorWorld) -> str:
    return f"""
[group]
name = "Faults Auto Group"

[[rooftop]]
slug = "faults-{world.kind}"
name = "Faults {world.kind}"
timezone = "America/Los_Angeles"
sms_from = "+14155550300"
quiet_hours = "off"

[rooftop.dms]
{world.dms_table()}timeout_seconds = {TIMEOUT}

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
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging(json=True, level=logging.DEBUG, stream=stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def worker(
    world: VendorWorld, database: Database, settings: Settings, tmp_path: Path
) -> Iterator[Worker]:
    toml = tmp_path / "dealer.toml"
    toml.write_text(dealer_toml(world))
    with database.transaction() as session:
        apply_dealer_config(session, config=load_dealer_config(toml), source=str(toml))
    sandbox_config = SandboxConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        callbacks=False,
    )
    with (
        SandboxServer(sandbox_config) as sandbox,
        Worker(
            database,
            public_url=settings.public_url,
            gateway=TwilioGateway(
                settings.twilio_account_sid, settings.twilio_auth_token, api_url=sandbox.url
            ),
            adapters=AdapterCache(),
            hooks=change_hooks(),
            clock=Clock(),
        ) as worker,
    ):
        yield worker


def poll(worker: Worker) -> PollResult:
    (result,) = worker.poll_every_rooftop()
    return result


def health(database: Database) -> DmsPollState:
    with database.sessions() as session:
        return session.scalars(select(DmsPollState)).one()


def stored(database: Database) -> dict[str, str]:
    with database.sessions() as session:
        rows = session.execute(select(RepairOrder.ro_number, RepairOrder.stage)).all()
    return {number: stage for number, stage in rows}


@pytest.mark.slow
def test_timeouts_429_5xx_and_malformed_records_for_each_vendor(
    world: VendorWorld, worker: Worker, database: Database, logs: io.StringIO
) -> None:
    lines = [Line("1", "OILCHG", "89.95"), Line("2", "BRKPAD", "412.00", "declined")]
    world.open("6001", phone="4155550142", vin="JTMW1RFV5MD012345", lines=lines)
    world.open_malformed("6002")
    world.open("6003", phone="4155550143", vin="JTMW1RFV5MD012346", lines=lines)

    # Malformed: quarantined with the field named; the good ROs of the page are stored.
    first = poll(worker)
    assert first.outcome == "ok", first.error
    assert stored(database) == {"6001": "checked_in", "6003": "checked_in"}
    with database.sessions() as session:
        (bad,) = session.scalars(select(QuarantinedRecord)).all()
    field = {
        "cdk": "openDate",
        "dealertrack": "OpenTransactionDate",
        "tekion": "creationTime",
        "star": "RepairOrderOpenedDate",
    }[world.kind]
    assert bad.ro_number == "6002" and bad.reason.startswith(f"{field}: "), bad.reason

    # A DMS slower than the timeout once, a 429 with Retry-After, a 503: retried, then ok.
    world.move("6001", "ready")
    assert world.slow is not None
    world.slow.times, world.slow.seconds = 1, TIMEOUT * 3
    world.faults.add(429, retry_after=1)
    world.faults.add(503)
    result = poll(worker)
    assert result.outcome == "ok", result.error
    assert stored(database)["6001"] == "ready_for_pickup"
    cursor = health(database).cursor_at

    # 5xx for good: the poll gives up within its budget and names the rooftop and the DMS.
    world.faults.add(503, times=100)
    failed = poll(worker)
    assert failed.outcome == "failed"
    state = health(database)
    assert state.consecutive_failures == 1 and state.cursor_at == cursor
    assert state.last_error and f"faults-{world.kind}" in state.last_error
    assert f"({world.kind})" in state.last_error and "gave up retrying" in state.last_error
    assert "503" in state.last_error or "500 soap:Server" in state.last_error  # SOAP: a fault
    world.faults.clear()

    # Slower than the timeout on every try: timed out, named.
    world.slow.times, world.slow.seconds = 100, TIMEOUT * 3
    timed_out = poll(worker)
    assert timed_out.outcome == "failed" and "timed out" in (timed_out.error or "")
    world.slow.times = 0

    # The DMS is back: the poll catches up from its cursor.
    world.close("6003")
    back = poll(worker)
    assert back.outcome == "ok", back.error
    assert stored(database)["6003"] == "closed"
    assert health(database).consecutive_failures == 0

    for text in (state.last_error or "", timed_out.error or "", logs.getvalue()):
        assert SECRET not in text
    with database.sessions() as session:
        assert session.scalars(select(Rooftop)).one().slug == f"faults-{world.kind}"
