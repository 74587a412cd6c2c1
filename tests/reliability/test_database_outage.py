"""The database going away, through a TCP proxy in front of PostgreSQL (never the server
itself): during requests `/readyz` turns 503 at once and webhooks answer 5xx having written
nothing; during a worker run the ticks fail, the process stays up, and once the database is
back every message is sent exactly once and no row is left half-way."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from app.config import Settings
from app.conversations.models import InboundMessage
from app.db import make_engine, make_session_factory
from app.deps import Database
from app.main import create_app
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.reliability.conftest import table_fingerprint
from tests.reliability.tcp_proxy import TcpProxy
from tests.support import ServedApp, load_sample_dealer

ROOT = Path(__file__).resolve().parents[2]
INBOUND = "/webhooks/twilio/messages"
UNFINISHED = ("claimed", "sending")
FIGURES: dict[str, int] = {}


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def proxied(proxy: TcpProxy, database_url: str) -> Iterator[Database]:
    """The app's database, reached only through the proxy."""
    engine = make_engine(proxy.rewrite(database_url), pool_size=4)
    yield Database(engine=engine, sessions=make_session_factory(engine))
    engine.dispose()


def _signed(settings: Settings, sid: str) -> tuple[dict[str, str], dict[str, str]]:
    form = {
        "MessageSid": sid,
        "AccountSid": settings.twilio_account_sid,
        "From": "+17075550123",
        "To": "+14155550100",
        "Body": "Is my car ready?",
        "NumMedia": "0",
    }
    signature = compute_signature(settings.twilio_auth_token, settings.public_url + INBOUND, form)
    return form, {SIGNATURE_HEADER: signature}


def _stored(engine: Engine, sid: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.provider_sid == sid)
            ).scalar_one()
        )


@pytest.mark.postgres_only
def test_requests_while_the_database_is_away(
    database: Database, engine: Engine, proxied: Database, proxy: TcpProxy, settings: Settings
) -> None:
    """Up: 200s. Cut (refused) and stalled (no answer): /readyz 503 within the client's
    patience, /healthz 200, a signed text 5xx with nothing written. Back: /readyz 200 and
    Twilio's retry of that text is stored once."""
    load_sample_dealer(database)
    retried_sid = "SM" + "d" * 32
    rejected = 0
    with (
        ServedApp(create_app(settings, database=proxied)) as served,
        # /readyz must answer well inside this, or load balancers see a hang, not a 503.
        httpx.Client(base_url=served.url, timeout=15) as client,
    ):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        form, headers = _signed(settings, "SM" + "c" * 32)
        assert client.post(INBOUND, data=form, headers=headers).status_code == 200

        for fault in (proxy.cut, proxy.stall):
            fault()
            before = table_fingerprint(engine)
            ready = client.get("/readyz")
            assert ready.status_code == 503, (fault.__name__, ready.text)
            assert ready.json()["status"] == "unavailable"
            assert client.get("/healthz").status_code == 200
            form, headers = _signed(settings, retried_sid)
            response = client.post(INBOUND, data=form, headers=headers)
            assert response.status_code >= 500, (fault.__name__, response.status_code)
            rejected += 1
            assert table_fingerprint(engine) == before, f"{fault.__name__}: a rejected text wrote"

        proxy.restore()
        wait_until(lambda: client.get("/readyz").status_code == 200, "/readyz 200 again")
        for _ in range(2):  # Twilio's retry, and a duplicate of it
            assert client.post(INBOUND, data=form, headers=headers).status_code == 200
    assert _stored(engine, retried_sid) == 1
    FIGURES["rejected webhooks"] = rejected
    print(f"\ndatabase away during requests: {rejected} webhooks refused (5xx), 0 rows written")
