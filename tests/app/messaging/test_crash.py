"""Exactly once to the customer, even when workers die: subprocesses, SIGKILL, many workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from app.config import Settings
from app.customers.models import Phone
from app.db import utcnow
from app.deps import Database
from app.messaging.jobs import refresh_unconfirmed
from app.messaging.models import OutboundMessage
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.app.messaging.conftest import Clock, Shop, sent_to

ROOT = Path(__file__).resolve().parents[3]
NUMBERS = ("+14155550142", "+14155550143", "+14155550144")


def worker(
    database_url: str, settings: Settings, sandbox_url: str, **env: str
) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "PITWALL_DATABASE_URL": database_url,
        "PITWALL_PUBLIC_URL": settings.public_url,
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "SANDBOX_URL": sandbox_url,
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.app.messaging.worker_proc"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def three_welcomes(shop: Shop) -> None:
    for n, number in enumerate(NUMBERS):
        customer, _ = shop.customer(number)
        shop.repair_order(customer, number=f"R{n}")


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["before_send", "after_send"])
def test_a_worker_killed_mid_send_is_finished_by_another_exactly_once(
    kill_at: str,
    shop: Shop,
    sandbox: SandboxServer,
    dispatch: Callable[..., Any],
    clock: Clock,
    database_url: str,
    app_settings: Settings,
    database: Database,
    gateway: TwilioGateway,
) -> None:
    three_welcomes(shop)
    process = worker(database_url, app_settings, sandbox.url, PITWALL_TEST_KILL_AT=kill_at)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    assert {m.state for m in shop.messages()} == {"sending"}  # claimed, lease still running
    assert len(sent_to(sandbox)) == (1 if kill_at == "after_send" else 0)

    assert dispatch().claimed == 0  # the dead worker's lease still holds
    clock.advance(minutes=6)
    result = dispatch()
    assert result.claimed == 3
    assert (result.sent, result.adopted) == ((2, 1) if kill_at == "after_send" else (3, 0))

    assert sandbox.wait_for_callbacks(10)
    per_number = Counter(m.to for m in sent_to(sandbox))
    assert per_number == dict.fromkeys(NUMBERS, 1)
    # The adopted message's callbacks came before Pitwall knew its sid; a later refresh catches up.
    clock.advance(minutes=15)
    refresh_unconfirmed(database, gateway=gateway, clock=clock)
    assert {m.state for m in shop.messages()} == {"delivered"}


@pytest.mark.slow
@pytest.mark.postgres_only
def test_four_workers_drain_two_thousand_messages_once_each(
    shop: Shop, database_url: str, settings: Settings, database: Database
) -> None:
    total = 2000
    now = utcnow()
    with database.transaction() as session:
        numbers = [f"+1415555{n:04d}" for n in range(total)]
        session.execute(
            insert(Phone),
            [
                {
                    "group_id": shop.group_id,
                    "e164": e164,
                    "as_typed": e164,
                    "kind": "mobile",
                    "textable": True,
                }
                for e164 in numbers
            ],
        )
        phone_ids = {e164: id_ for e164, id_ in session.execute(select(Phone.e164, Phone.id))}
        session.execute(
            insert(OutboundMessage),
            [
                {
                    "rooftop_id": shop.rooftop_id,
                    "phone_id": phone_ids[e164],
                    "kind": "status",
                    "purpose": "status",
                    "dedupe_key": f"load:{n}",
                    "channel": "sms",
                    "to_address": e164,
                    "from_address": "+14155550100",
                    "body": f"Your car is ready ({n})",
                    "state": "pending",
                    "not_before": now,
                    "attempt": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, e164 in enumerate(numbers)
            ],
        )
    config = SandboxConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        callbacks=False,
    )
    with SandboxServer(config) as sandbox:
        processes = [
            worker(
                database_url,
                settings,
                sandbox.url,
                PITWALL_TEST_DRAIN="1",
                PITWALL_TEST_CONCURRENCY="8",
                PITWALL_TEST_BATCH="100",
            )
            for _ in range(4)
        ]
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        held = sandbox.state.list_messages()
        creates = len(sandbox.state.create_requests)

    per_body = Counter(m.body for m in held)
    duplicates = sum(count - 1 for count in per_body.values())
    missing = total - len(per_body)
    print(
        f"\n4 workers: {len(held)} messages, {duplicates} duplicates, {missing} missing, "
        f"{creates} creates, per worker {[r['sent'] for r in reports]}"
    )
    assert (len(held), duplicates, missing, creates) == (total, 0, 0, total)
    assert all(r["sent"] > 0 for r in reports)  # the work was really shared
    with database.sessions() as session:
        states = Counter(session.scalars(select(OutboundMessage.state)))
        sids = session.scalars(select(OutboundMessage.provider_sid)).all()
    assert states == {"queued": total}
    assert {m.sid for m in held} == set(sids)
