"""The first path a person can watch: DMS change -> one text at the Twilio sandbox.

Everything real: the `pitwall` CLI in subprocesses, the REST DMS bridge over HTTP,
the official Twilio client talking to the sandbox, signed status callbacks back
into the web app, and a migrated database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN, Settings
from app.deps import Database
from app.main import create_app
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.support import ServedApp, free_port

PITWALL = [sys.executable, "-m", "app"]


def ro_record(status: str, updated_at: str) -> dict[str, Any]:
    return {
        "ro_number": "R1001",
        "status": status,
        "opened_at": "2026-11-23T15:02:00Z",
        "updated_at": updated_at,
        "promised_at": "2026-11-23T23:00:00Z",
        "closed_at": None,
        "advisor": {"id": "A7", "name": "Dana Ruiz"},
        "customer": {
            "id": "C-4411",
            "first_name": "Sam",
            "last_name": "Lee",
            "phones": [{"number": "(415) 555-0142", "kind": "mobile"}],
            "language": "en",
            "sms_consent": True,
        },
        "vehicle": {"vin": "JTMW1RFV5MD012345", "year": 2021, "make": "Toyota", "model": "RAV4"},
        "lines": [
            {
                "line": "A",
                "op_code": "OILCHG",
                "description": "Oil and filter",
                "status": "approved",
                "amount": "89.95",
            },
        ],
    }


DEALER_TOML = """
[group]
name = "Bayview Auto Group"

[[rooftop]]
slug = "bayview-toyota"
name = "Bayview Toyota"
timezone = "America/Los_Angeles"
sms_from = "+14155550100"
quiet_hours = "off"
send_rate_per_second = 50

[rooftop.dms]
kind = "rest"
base_url = "{dms_url}"
token = "bridge-token"
poll_seconds = 60

[rooftop.status_map]
"OPEN" = "checked_in"
"WIP" = "in_repair"
"READY" = "ready_for_pickup"
"""


@pytest.fixture
def world(database: Database, database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The DMS bridge fake, the Twilio sandbox, and Pitwall's web app, all on loopback."""
    web_port = free_port()
    public_url = f"http://127.0.0.1:{web_port}"
    dms = RestBridgeFake()
    sandbox = SandboxServer(
        SandboxConfig(
            account_sid=DEMO_ACCOUNT_SID, auth_token=DEMO_AUTH_TOKEN, pitwall_public_url=public_url
        )
    )
    settings = Settings(
        PITWALL_DATABASE_URL=database_url,
        PITWALL_PUBLIC_URL=public_url,
        PITWALL_SECRET_KEY="test",
    )
    with (
        FakeServer(dms.app) as dms_server,
        sandbox,
        ServedApp(create_app(settings, database=database), port=web_port),
    ):
        config = tmp_path / "dealer.toml"
        config.write_text(DEALER_TOML.format(dms_url=dms_server.url))
        env = {
            **os.environ,
            "PITWALL_DATABASE_URL": database_url,
            "PITWALL_PUBLIC_URL": public_url,
            "PITWALL_TWILIO_API_URL": sandbox.url,
            "TWILIO_ACCOUNT_SID": DEMO_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        }
        yield {"dms": dms, "sandbox": sandbox, "env": env, "config": config}


def pitwall(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*PITWALL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"pitwall {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def texts_to(sandbox: SandboxServer, number: str) -> list[dict[str, Any]]:
    messages = httpx.get(f"{sandbox.url}/_sandbox/messages").json()["messages"]
    return [m for m in messages if m["to"] == number]


def test_ready_ro_gets_exactly_one_ready_text(world: dict[str, Any]) -> None:
    env, dms, sandbox = world["env"], world["dms"], world["sandbox"]
    pitwall(env, "db", "upgrade")
    pitwall(env, "config", "load", str(world["config"]))

    dms.put(ro_record("WIP", "2026-11-23T17:00:00Z"))
    pitwall(env, "worker", "--once")
    before = texts_to(sandbox, "+14155550142")

    dms.put(ro_record("READY", "2026-11-23T17:40:00Z"))
    pitwall(env, "worker", "--once")
    after = texts_to(sandbox, "+14155550142")
    new = [m for m in after if m["sid"] not in {b["sid"] for b in before}]
    assert len(new) == 1, new
    assert "ready" in new[0]["body"].lower()
    assert new[0]["from"] == "+14155550100"

    # Running the worker again, with nothing changed at the DMS, sends nothing more.
    pitwall(env, "worker", "--once")
    pitwall(env, "worker", "--once")
    assert len(texts_to(sandbox, "+14155550142")) == len(after)


def test_twilio_answers_stop_on_a_plain_long_code_and_pitwall_sends_nothing_into_its_block(
    world: dict[str, Any],
) -> None:
    """The sandbox answers STOP as Twilio does on a long code (no OptOutType): Pitwall stays
    silent, records the block, and an opt-in in words Twilio does not know leaves it."""
    env, dms, sandbox = world["env"], world["dms"], world["sandbox"]
    pitwall(env, "db", "upgrade")
    pitwall(env, "config", "load", str(world["config"]))
    dms.put(ro_record("WIP", "2026-11-23T17:00:00Z"))
    pitwall(env, "worker", "--once")
    sent_before = len(texts_to(sandbox, "+14155550142"))
    assert sent_before >= 1

    def text(body: str) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(
            f"{sandbox.url}/_sandbox/inbound",
            json={"from": "+14155550142", "to": "+14155550100", "body": body},
            timeout=30,
        ).json()
        assert answer["status_code"] == 200, answer
        return answer

    assert text("STOP")["replies"] == []  # Twilio's own answer is the only one
    thread = sandbox.state.snapshot_threads()["+14155550142"]
    assert thread[-1].kind == "carrier" and "unsubscribed" in thread[-1].text
    assert text("INICIAR")["replies"] == []  # Pitwall's consent back, Twilio's block stays

    dms.put(ro_record("READY", "2026-11-23T17:40:00Z"))
    pitwall(env, "worker", "--once")
    # Nothing was even tried: a send would only have collected a 21610.
    assert len(texts_to(sandbox, "+14155550142")) == sent_before
    assert not any(
        r.get("To") == "+14155550142" for r in sandbox.state.create_requests[sent_before:]
    )

    text("START")
    assert "re-subscribed" in sandbox.state.snapshot_threads()["+14155550142"][-1].text
    assert not sandbox.state.is_opted_out("+14155550142", sender="+14155550100")
