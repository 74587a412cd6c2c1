"""Workers that die or freeze at the worst moment, as real processes: nothing lost,
nothing sent twice. (SIGKILL before and after Twilio's answer while dispatching is
tests/app/messaging/test_crash.py; these add the frozen worker and the DMS page.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.repair_orders.models import DmsPollState, RepairOrder, RoEvent
from app.repair_orders.poller import poll_rooftop
from app.wiring import change_hooks
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Clock, Shop, sent_to
from tests.app.repair_orders.conftest import NOW, ScriptedDms, bridge_record

ROOT = Path(__file__).resolve().parents[2]
NUMBERS = ("+14155550142", "+14155550143", "+14155550144")


def spawn(what: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.procs", what],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(
                f"worker exited early: {process.stderr.read() if process.stderr else ''}"
            )
        if time.monotonic() > deadline:
            raise AssertionError("worker never reached the pause")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_worker_frozen_after_twilio_accepted_cannot_write_late(
    shop: Shop,
    sandbox: SandboxServer,
    dispatch: Callable[..., Any],
    clock: Clock,
    database_url: str,
    app_settings: Settings,
    tmp_path: Path,
) -> None:
    """SIGSTOP between Twilio's 201 and the commit, past the lease; another worker adopts
    the message; SIGCONT: the late write finds another claim token and changes nothing."""
    for n, number in enumerate(NUMBERS):
        customer, _ = shop.customer(number)
        shop.repair_order(customer, number=f"R{n}")
    marker = tmp_path / "accepted"
    process = spawn(
        "dispatch",
        {
            "PITWALL_DATABASE_URL": database_url,
            "PITWALL_PUBLIC_URL": app_settings.public_url,
            "TWILIO_ACCOUNT_SID": app_settings.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": app_settings.twilio_auth_token,
            "SANDBOX_URL": sandbox.url,
            "PITWALL_TEST_PAUSE_AFTER_ACCEPT": str(marker),
            # 36 s: the dispatcher starts no send with under 30 s (LEASE_SAFETY) left, so
            # 6 s after its claim the frozen worker's own clock says its lease is gone.
            "PITWALL_TEST_LEASE_SECONDS": "36",
        },
    )
    try:
        wait_for(marker, process)
        os.kill(process.pid, signal.SIGSTOP)
        first_sid = marker.read_text()
        frozen_at = time.monotonic()
        clock.advance(minutes=1)  # for the other worker, the frozen one's lease is over
        result = dispatch()
        assert result.claimed == 3
        with shop.database.sessions() as session:
            adopted = session.scalar(
                select(OutboundMessage).where(OutboundMessage.provider_sid == first_sid)
            )
            assert adopted is not None  # found at Twilio, not sent again
        state_before = {m.id: (m.state, m.provider_sid) for m in shop.messages()}
        time.sleep(max(0.0, 7 - (time.monotonic() - frozen_at)))  # and by its own clock too
        os.kill(process.pid, signal.SIGCONT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["lost_claims"] >= 1 and report["sent"] == 0
    sandbox.wait_for_callbacks(10)
    per_number = Counter(m.to for m in sent_to(sandbox))
    duplicates = sum(n - 1 for n in per_number.values())
    lost = len(set(NUMBERS) - set(per_number))
    assert (lost, duplicates) == (0, 0), per_number
    # The late worker changed no row (callbacks may only have moved them forward).
    after = {m.id: m.provider_sid for m in shop.messages()}
    assert after == {k: sid for k, (_state, sid) in state_before.items()}


@pytest.mark.slow
def test_a_poller_killed_mid_page_loses_no_ro_and_doubles_no_event(
    shop: Shop, database: Database, database_url: str, tmp_path: Path
) -> None:
    """SIGKILL inside the second page's transaction: that page rolls back, the cursor
    stays at the first page, the next worker re-reads it; every RO once, every event once,
    every welcome text once."""
    page1 = [
        bridge_record(
            f"P{i}",
            status="OPEN",
            updated_at=f"2026-11-22T17:0{i}:00Z",
            customer={
                **bridge_record()["customer"],
                "id": f"C{i}",
                "phones": [{"number": f"+1415555{1100 + i}", "kind": "mobile"}],
            },
        )
        for i in range(5)
    ]
    page2 = [
        bridge_record(
            f"Q{i}",
            status="OPEN",
            updated_at=f"2026-11-22T17:3{i}:00Z",
            customer={
                **bridge_record()["customer"],
                "id": f"D{i}",
                "phones": [{"number": f"+1415555{1200 + i}", "kind": "mobile"}],
            },
        )
        for i in range(5)
    ]
    pages_file = tmp_path / "pages.json"
    pages_file.write_text(json.dumps([page1, page2]))
    process = spawn(
        "poll",
        {
            "PITWALL_DATABASE_URL": database_url,
            "PITWALL_TEST_PAGES": str(pages_file),
            "PITWALL_TEST_KILL_AFTER": "3",
            "PITWALL_TEST_ROOFTOP": str(shop.rooftop_id),
            "PITWALL_TEST_NOW": NOW.isoformat(),
        },
    )
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    with database.sessions() as session:
        stored = set(session.scalars(select(RepairOrder.ro_number)))
        cursor = session.get(DmsPollState, shop.rooftop_id)
    assert stored == {f"P{i}" for i in range(5)}  # the second page rolled back whole
    assert cursor is not None and cursor.cursor_at is not None
    assert cursor.cursor_at.isoformat().startswith("2026-11-22T17:04")

    # The next worker, once the dead one's lease has expired, re-reads and finishes.
    later = NOW + timedelta(minutes=3)
    result = poll_rooftop(
        database,
        rooftop_id=shop.rooftop_id,
        adapter_factory=lambda _r: ScriptedDms(pages=[page1, page2]),
        hooks=change_hooks(),
        clock=lambda: later,
        worker_id="survivor",
    )
    assert result.outcome == "ok", result
    with database.sessions() as session:
        ros = session.scalars(select(RepairOrder)).all()
        events = Counter(session.execute(select(RoEvent.repair_order_id, RoEvent.kind)).all())
        texts = Counter(
            session.scalars(
                select(OutboundMessage.repair_order_id).where(OutboundMessage.kind == "status")
            )
        )
        total = session.scalar(select(func.count()).select_from(RepairOrder))
    assert total == 10 and {r.ro_number for r in ros} == {
        *(f"P{i}" for i in range(5)),
        *(f"Q{i}" for i in range(5)),
    }
    assert max(events.values()) == 1, events  # no event twice
    assert set(texts) == {r.id for r in ros} and set(texts.values()) == {1}  # one welcome each
