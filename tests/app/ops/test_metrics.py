"""/metrics over real HTTP: the database's numbers at scrape time, this process's counters,
a registry per app, and who may scrape."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.conversations.models import Task
from app.db import make_engine, make_session_factory, utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.main import create_app
from app.messaging.models import OutboundMessage
from app.ops import metrics
from app.repair_orders.models import DmsPollState
from tests.support import ServedApp, load_sample_dealer


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name{labels}` from an exposition."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    raise AssertionError(f"{name}{labels} not in metrics:\n{text}")


@pytest.fixture
def shop(database: Database) -> None:
    """Two rooftops with an outbox, DMS poll health and an open inbox task."""
    load_sample_dealer(database)
    now = utcnow()
    with database.transaction() as session:
        toyota, ford = session.query(Rooftop).order_by(Rooftop.id).all()

        def message(n: int, **fields: object) -> OutboundMessage:
            values: dict[str, object] = {"channel": "sms", **fields}
            row = OutboundMessage(
                rooftop_id=toyota.id,
                kind="status",
                purpose="status",
                dedupe_key=f"test:{n}",
                **values,
            )
            session.add(row)
            return row

        message(1, state="pending", not_before=now - timedelta(minutes=5))
        message(2, state="pending", not_before=now - timedelta(minutes=1))
        message(3, state="pending", not_before=now + timedelta(hours=2))  # not due yet
        message(4, state="delivered", channel="whatsapp")
        message(5, state="failed", error_code=30006)
        session.add(
            DmsPollState(
                rooftop_id=toyota.id,
                last_success_at=now - timedelta(seconds=90),
                consecutive_failures=0,
            )
        )
        session.add(
            DmsPollState(
                rooftop_id=ford.id,
                last_success_at=now - timedelta(minutes=20),
                consecutive_failures=3,
                last_error="401",
            )
        )
        session.add(
            Task(
                rooftop_id=toyota.id,
                kind="needs_reply",
                summary="is it ready?",
                created_at=now - timedelta(minutes=10),
            )
        )
        session.add(Task(rooftop_id=toyota.id, kind="callback", summary="done", state="done"))


def test_metrics_from_the_database_over_http(
    shop: None, settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PITWALL_METRICS_TOKEN", raising=False)
    metrics.observe_send(0.2)
    metrics.count_twilio_error(21610)
    with ServedApp(create_app(settings, database=database)) as served:
        response = httpx.get(f"{served.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value(text, "pitwall_messages", state="pending", channel="sms") == 3
    assert value(text, "pitwall_messages", state="delivered", channel="whatsapp") == 1
    assert value(text, "pitwall_database_up") == 1
    assert value(text, "pitwall_outbox_due") == 2
    assert 290 <= value(text, "pitwall_outbox_oldest_due_seconds") < 600
    assert 85 <= value(text, "pitwall_dms_poll_lag_seconds", rooftop="bayview-toyota") < 600
    assert value(text, "pitwall_dms_poll_consecutive_failures", rooftop="bayview-ford") == 3
    assert value(text, "pitwall_inbox_open_tasks") == 1
    assert value(text, "pitwall_inbox_oldest_open_seconds") >= 590
    assert value(text, "pitwall_message_errors_last_hour", code="30006") == 1
    assert value(text, "pitwall_send_seconds_count") >= 1
    assert value(text, "pitwall_twilio_errors_total", code="21610") >= 1


def test_each_app_has_its_own_registry(settings: Settings, database: Database) -> None:
    first, second = create_app(settings, database=database), create_app(settings, database=database)
    for app in (first, second):
        with TestClient(app, client=("127.0.0.1", 5000)) as client:
            assert client.get("/metrics").status_code == 200
    assert first.state.metrics_registry is not second.state.metrics_registry


def test_a_token_is_required_when_one_is_set(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITWALL_METRICS_TOKEN", "scrape-me-please")
    with ServedApp(create_app(settings, database=database)) as served:
        missing = httpx.get(f"{served.url}/metrics", timeout=10)
        wrong = httpx.get(
            f"{served.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10
        )
        right = httpx.get(
            f"{served.url}/metrics",
            headers={"Authorization": "Bearer scrape-me-please"},
            timeout=10,
        )
    assert missing.status_code == 401 and wrong.status_code == 401
    assert right.status_code == 200 and "pitwall_outbox_due" in right.text


def test_without_a_token_only_loopback_may_scrape(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PITWALL_METRICS_TOKEN", raising=False)
    app = create_app(settings, database=database)
    with TestClient(app, client=("203.0.113.9", 4000)) as outside:
        refused = outside.get("/metrics")
    assert refused.status_code == 403 and "PITWALL_METRICS_TOKEN" in refused.text
    with TestClient(app, client=("::1", 4000)) as inside:
        assert inside.get("/metrics").status_code == 200


def test_webhook_latency_is_timed_per_path(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PITWALL_METRICS_TOKEN", raising=False)
    app = create_app(settings, database=database)  # create_app instruments the webhooks
    with TestClient(app, client=("127.0.0.1", 4000)) as client:
        before = client.get("/metrics").text
        client.post("/webhooks/twilio/status", data={"MessageSid": "SMx"})
        after = client.get("/metrics").text
    path = "/webhooks/twilio/status"

    def count(text: str) -> float:
        try:
            return value(text, "pitwall_webhook_seconds_count", path=path)
        except AssertionError:
            return 0.0

    assert count(after) == count(before) + 1


def test_webhook_timings_are_labelled_by_route_so_unknown_paths_cannot_grow_metrics(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by probing: 2,000 requests to /webhooks/x<N> added 28,000 lines for good."""
    monkeypatch.delenv("PITWALL_METRICS_TOKEN", raising=False)
    app = create_app(settings, database=database)
    with TestClient(app, client=("127.0.0.1", 4000)) as client:
        client.post("/webhooks/x-warm-up")
        before = client.get("/metrics").text
        for n in range(2_000):
            assert client.post(f"/webhooks/x{n}").status_code == 404
        after = client.get("/metrics").text
    assert "/webhooks/x" not in after
    assert len(after.splitlines()) == len(before.splitlines())
    unmatched = value(after, "pitwall_webhook_seconds_count", path="unmatched")
    assert unmatched == value(before, "pitwall_webhook_seconds_count", path="unmatched") + 2_000


def test_an_unreadable_database_still_answers_with_database_up_0(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PITWALL_METRICS_TOKEN", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    empty = Database(engine=engine, sessions=make_session_factory(engine))
    with TestClient(create_app(settings, database=empty), client=("127.0.0.1", 1)) as client:
        response = client.get("/metrics")
    engine.dispose()
    assert response.status_code == 200
    assert value(response.text, "pitwall_database_up") == 0
    assert "pitwall_send_seconds_count" in response.text
