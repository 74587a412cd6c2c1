"""The database going away, through a TCP proxy in front of PostgreSQL (never the server
itself): during requests `/readyz` turns 503 at once and webhooks answer 5xx having written
nothing; during a worker run the ticks fail, the process stays up, and once the database is
back every message is sent exactly once and no row is left half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from app.config import Settings, load_dealer_config
from app.conversations.models import InboundMessage
from app.db import make_engine, make_session_factory
from app.dealers.models import Rooftop
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.main import create_app
from app.messaging.models import OutboundMessage
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.reliability.burst import queue_outbound
from tests.reliability.conftest import table_fingerprint
from tests.reliability.tcp_proxy import TcpProxy
from tests.support import ServedApp, load_sample_dealer, wait_until

ROOT = Path(__file__).resolve().parents[2]
INBOUND = "/webhooks/twilio/messages"
UNFINISHED = ("claimed", "sending")
FIGURES: dict[str, int] = {}


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


# `pitwall worker` as production runs it, with a 10 s lease instead of 5 min (and the
# send-start margin cut to match) so abandoned claims come back within the test.
WORKER = textwrap.dedent(
    """
    from datetime import timedelta
    import sys
    import app.messaging.dispatcher as dispatcher
    dispatcher.dispatch_due.__kwdefaults__["lease"] = timedelta(seconds=10)
    dispatcher.LEASE_SAFETY = timedelta(seconds=2)
    sys.argv = ["pitwall", "worker"]
    from app.cli import main
    main()
    """
)


def _outage_dealer(database: Database, tmp_path: Path, dms_url: str) -> tuple[int, int]:
    """One rooftop on an empty REST bridge, so the worker's own polls add no texts."""
    toml = tmp_path / "dealer.toml"
    toml.write_text(
        textwrap.dedent(
            f"""
            [group]
            name = "Outage Motors"
            default_region = "US"

            [[rooftop]]
            slug = "outage-honda"
            name = "Outage Honda"
            timezone = "America/Los_Angeles"
            sms_from = "+14155550100"
            send_rate_per_second = 30
            quiet_hours = "off"
            daily_cap = 50

            [rooftop.dms]
            kind = "rest"
            base_url = "{dms_url}"
            token = "bridge-token"
            poll_seconds = 3600
            """
        )
    )
    with database.transaction() as session:
        apply_dealer_config(session, config=load_dealer_config(toml), source=str(toml))
        rooftop = session.scalars(select(Rooftop)).one()
        return rooftop.id, rooftop.group_id


def _states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(OutboundMessage.state)).scalars())


@pytest.mark.postgres_only
@pytest.mark.slow
def test_worker_run_while_the_database_is_away(
    database: Database,
    engine: Engine,
    proxy: TcpProxy,
    database_url: str,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """`pitwall worker` against the proxy; the proxy is cut once the first batch's sends are
    reaching Twilio. Its ticks fail and are logged, the process stays up; restored, it sends
    the rest and adopts what Twilio already has: every text once, no row left half-way."""
    total = 120
    config = SandboxConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        latency_ms=100,  # sends in flight when the database goes
        callbacks=False,
    )
    log = tmp_path / "worker.log"
    with (
        FakeServer(RestBridgeFake().app) as dms,
        SandboxServer(config) as sandbox,
        log.open("w") as log_file,
    ):
        rooftop_id, group_id = _outage_dealer(database, tmp_path, dms.url)
        queue_outbound(database, rooftop_id=rooftop_id, group_id=group_id, total=total)
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=ROOT,
            env={
                **os.environ,
                "PITWALL_DATABASE_URL": proxy.rewrite(database_url),
                "PITWALL_PUBLIC_URL": settings.public_url,
                "PITWALL_TWILIO_API_URL": sandbox.url,
                "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
                "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            },
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: len(sandbox.state.list_messages()) >= 15, "the first sends")
            proxy.cut()
            cut_at = len(sandbox.state.list_messages())
            wait_until(
                lambda: log.read_text().count("worker job dispatch failed") >= 2,
                "two failed dispatch ticks",
            )
            assert worker.poll() is None, log.read_text()[-3000:]
            during = _states(engine)
            proxy.restore()
            wait_until(
                lambda: not {"pending", "claimed", "sending"} & set(_states(engine)),
                "every row sent or final",
                timeout=40,
            )
            assert worker.poll() is None, log.read_text()[-3000:]
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        per_number = Counter(m.to for m in sandbox.state.list_messages())
    assert worker.returncode == 0, log.read_text()[-3000:]
    duplicates = sum(n - 1 for n in per_number.values())
    lost = total - len(per_number)
    states = _states(engine)
    failed_ticks = log.read_text().count("worker job dispatch failed")
    print(
        f"\ndatabase cut after {cut_at}/{total} sends reached Twilio; rows then {dict(during)};"
        f" {failed_ticks} dispatch ticks failed; lost {lost}, duplicated {duplicates};"
        f" final {dict(states)}"
    )
    assert (lost, duplicates) == (0, 0), per_number
    # Accepted by Twilio (queued/sent) or already delivered when adopted; nothing unfinished.
    assert set(states) <= {"queued", "sent", "delivered"}, states
