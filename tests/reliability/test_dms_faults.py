"""A DMS down, slow, or sending garbage, beside a healthy one, through the worker's own
poll job (`DmsPollJob`, one thread per rooftop) and real REST bridges over HTTP: the
healthy rooftop's ROs are stored and texted while the slow one is still waiting, the down
one's health names it, the garbage is quarantined beside the good records of its page, and a
page that is not JSON fails only that rooftop's poll with its cursor where it was."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings, load_dealer_config
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.repair_orders.jobs import AdapterCache
from app.repair_orders.models import DmsPollState, QuarantinedRecord, RepairOrder
from app.wiring import change_hooks
from app.worker import Worker
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.app.messaging.conftest import Clock
from tests.integrations.dms.conftest import bridge_record
from tests.support import wait_until

TOKENS = {
    "healthy": "healthy-bridge-token-1",
    "down": "down-bridge-token-22",
    "slow": "slow-bridge-token-333",
    "garbage": "garbage-bridge-token-4444",
}
SLOW_HOLD_LIMIT = 25.0  # the gate opens by itself after this, so a failing test ends


def record(ro: str | None, n: int, phone: str, **overrides: Any) -> dict[str, Any]:
    """A new, open RO whose customer agreed to texts."""
    customer = {**bridge_record()["customer"], "id": f"C-{ro}-{n}"}
    customer["phones"] = [{"number": phone, "kind": "mobile"}]
    return bridge_record(
        ro,  # type: ignore[arg-type]  # None: the garbage record with no RO number
        status="OPEN",
        updated_at=f"2026-11-22T17:{n:02d}:00Z",
        customer=customer,
        **overrides,
    )


class Gate:
    """ASGI wrapper holding every request until `open()` (a DMS slower than the others'
    whole poll); `waiting` is set once a request is being held."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.opened = threading.Event()
        self.waiting = threading.Event()

    def open(self) -> None:
        self.opened.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.waiting.set()
            deadline = time.monotonic() + SLOW_HOLD_LIMIT
            while not self.opened.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await self.app(scope, receive, send)


class NotJsonAfterFirstAnswer:
    """ASGI wrapper: after its first answer the bridge sends an HTML error page with status
    200, as a misconfigured proxy in front of a DMS does: the first poll's second page,
    and every page after it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.answered:
            body = b"<html><body>502 Bad Gateway</body></html>"
            headers = [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.answered += 1
        await self.app(scope, receive, send)


def _dealer_toml(path: Path, urls: dict[str, str]) -> Path:
    rooftops = []
    for n, name in enumerate(("healthy", "down", "slow", "garbage")):
        timeout = "timeout_seconds = 40\n" if name == "slow" else ""
        rooftops.append(
            f"""
[[rooftop]]
slug = "faults-{name}"
name = "Faults {name.title()}"
timezone = "America/Los_Angeles"
sms_from = "+1415555{300 + n:04d}"
send_rate_per_second = 100
quiet_hours = "off"
daily_cap = 50

[rooftop.dms]
kind = "rest"
base_url = "{urls[name]}"
token = "{TOKENS[name]}"
poll_seconds = 5
{timeout}
[rooftop.status_map]
"OPEN" = "checked_in"
"READY" = "ready_for_pickup"
"""
        )
    path.write_text(
        '[group]\nname = "Faults Auto Group"\ndefault_region = "US"\n' + "".join(rooftops)
    )
    return path


@pytest.fixture
def bridges() -> Iterator[tuple[dict[str, RestBridgeFake], dict[str, str], Gate]]:
    fakes = {name: RestBridgeFake(token=token, page_size=6) for name, token in TOKENS.items()}
    fakes["healthy"].put(*(record(f"H{i}", i, f"+1415555{4100 + i}") for i in range(3)))
    fakes["slow"].put(*(record(f"S{i}", i, f"+1415555{4200 + i}") for i in range(2)))
    fakes["down"].put(record("D0", 0, "+14155554300"))
    fakes["down"].faults.add(503, times=1000)
    garbage = [
        record("G0", 1, "+14155554400"),
        record("G1", 2, "+14155554401", opened_at="2026-13-45T99:00:00Z"),  # bad date
        record(None, 3, "+14155554402"),  # no RO number
        record("G3", 4, "+14155554403"),
        record(
            "G4",
            5,
            "+14155554404",
            lines=[{"line": "A", "op_code": "OIL", "status": "approved", "amount": "lots"}],
        ),
        record("G5", 6, "+14155554405"),
        record("G6", 7, "+14155554406"),  # the second page: never readable
    ]
    fakes["garbage"].source = lambda: garbage
    gate = Gate(fakes["slow"].app)
    apps: dict[str, ASGIApp] = {
        "healthy": fakes["healthy"].app,
        "down": fakes["down"].app,
        "slow": gate,
        "garbage": NotJsonAfterFirstAnswer(fakes["garbage"].app),
    }
    with ExitStack() as stack:
        urls = {name: stack.enter_context(FakeServer(app)).url for name, app in apps.items()}
        try:
            yield fakes, urls, gate
        finally:
            gate.open()


def _rooftops(database: Database) -> dict[str, int]:
    with database.sessions() as session:
        return {
            r.slug.removeprefix("faults-"): r.id for r in session.scalars(select(Rooftop)).all()
        }


def _health(database: Database, rooftop_id: int) -> DmsPollState | None:
    with database.sessions() as session:
        return session.get(DmsPollState, rooftop_id)


def _ros(database: Database, rooftop_id: int) -> set[str]:
    with database.sessions() as session:
        return set(
            session.scalars(
                select(RepairOrder.ro_number).where(RepairOrder.rooftop_id == rooftop_id)
            )
        )


def _attempted_since(database: Database, rooftop_id: int, since: datetime | None) -> bool:
    state = _health(database, rooftop_id)
    return (
        state is not None
        and state.last_attempt_at is not None
        and (since is None or state.last_attempt_at > since)
    )


@pytest.mark.slow
def test_a_dms_down_slow_or_sending_garbage_leaves_the_other_rooftops_alone(
    database: Database,
    settings: Settings,
    bridges: tuple[dict[str, RestBridgeFake], dict[str, str], Gate],
    tmp_path: Path,
) -> None:
    fakes, urls, gate = bridges
    toml = _dealer_toml(tmp_path / "dealer.toml", urls)
    with database.transaction() as session:
        apply_dealer_config(session, config=load_dealer_config(toml), source=str(toml))
    ids = _rooftops(database)
    clock = Clock()
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
            clock=clock,
        ) as worker,
    ):
        assert set(worker.polls.tick()) == set(ids.values())  # all four start at once

        # The healthy rooftop is stored and texted while the slow DMS still holds its poll.
        wait_until(lambda: _ros(database, ids["healthy"]) == {"H0", "H1", "H2"}, "healthy ROs")
        wait_until(gate.waiting.is_set, "the slow DMS holding its request")
        worker.dispatch_until_idle()
        texted = {m.to for m in sandbox.state.list_messages()}
        assert {f"+1415555{4100 + i}" for i in range(3)} <= texted
        assert not _ros(database, ids["slow"]), "the slow DMS has not answered yet"

        # Down: the poll fails after the adapter's retries; its health names rooftop and DMS.
        wait_until(lambda: _attempted_since(database, ids["down"], None), "the down poll")
        # Garbage: the first page stored around its bad records; the second is not JSON.
        wait_until(lambda: _attempted_since(database, ids["garbage"], None), "the garbage poll")
        assert gate.waiting.is_set() and not gate.opened.is_set()

        gate.open()
        wait_until(lambda: _ros(database, ids["slow"]) == {"S0", "S1"}, "the slow ROs")
        wait_until(lambda: _attempted_since(database, ids["slow"], None), "the slow poll")
        worker.dispatch_until_idle()

        # A second round: the down DMS fails again; the garbage one is not JSON at all.
        first = {name: _health(database, rooftop_id) for name, rooftop_id in ids.items()}
        clock.advance(seconds=6)
        assert set(worker.polls.tick()) == set(ids.values())
        for name in ("down", "garbage", "healthy", "slow"):
            attempted = first[name]
            assert attempted is not None
            since = attempted.last_attempt_at
            wait_until(
                partial(_attempted_since, database, ids[name], since), f"the second {name} poll"
            )
        sent = [m.to for m in sandbox.state.list_messages()]

    down = _health(database, ids["down"])
    assert down is not None and down.consecutive_failures == 2, down
    assert down.last_error and "faults-down" in down.last_error and "rest" in down.last_error
    assert "503" in down.last_error
    for token in TOKENS.values():
        assert token not in (down.last_error or "")
    assert not _ros(database, ids["down"])

    garbage = _health(database, ids["garbage"])
    assert garbage is not None and garbage.consecutive_failures == 2
    assert garbage.last_error and "faults-garbage" in garbage.last_error
    assert "JSON" in garbage.last_error
    assert garbage.cursor_at is not None
    assert garbage.cursor_at.isoformat().startswith("2026-11-22T17:06")  # page 1, not page 2
    assert _ros(database, ids["garbage"]) == {"G0", "G3", "G5"}
    with database.sessions() as session:
        quarantined = session.execute(
            select(QuarantinedRecord.ro_number, QuarantinedRecord.reason).where(
                QuarantinedRecord.rooftop_id == ids["garbage"]
            )
        ).all()
        text_to = list(session.scalars(select(OutboundMessage.to_address)))
    reasons = {ro: reason for ro, reason in quarantined}
    assert len(quarantined) == 3, quarantined
    assert set(reasons) == {"G1", None, "G4"}
    assert "opened_at" in reasons["G1"]
    assert "ro_number" in (reasons[None] or "")
    assert "amount" in reasons["G4"]

    for name in ("healthy", "slow"):
        health = _health(database, ids[name])
        assert health is not None and health.consecutive_failures == 0 and not health.last_error
    # Every stored RO's customer texted once; nobody from the failed or garbage records.
    expected = {f"+1415555{n}" for n in (4100, 4101, 4102, 4200, 4201, 4400, 4403, 4405)}
    assert sorted(sent) == sorted(expected), sent
    assert sorted(a for a in text_to if a) == sorted(expected)
    print(
        f"\nDMS faults: 1 down (503 x{len(fakes['down'].requests)} requests), 1 slow"
        f" (held past the others' polls), 1 garbage page (3 bad records quarantined, 3 stored)"
        f" + 1 non-JSON page (cursor kept); healthy rooftop texted before the slow one answered"
        f"\n  down: {down.last_error}\n  garbage: {garbage.last_error}"
    )
