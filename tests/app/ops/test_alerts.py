"""Alerts: one incident, one notice (e-mail over real SMTP, webhook over real HTTP), a
recovery notice when it clears, a retry when no channel took it."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.ops.alerts import AlertNotifier, AlertSettings, open_alert
from app.ops.jobs import run_alert_checks
from app.ops.models import Alert
from app.repair_orders.models import DmsPollState
from tests.support import load_sample_dealer


class SmtpSink:
    """Just enough SMTP (EHLO/HELO, MAIL, RCPT, DATA, QUIT) to receive mail for real."""

    def __init__(self) -> None:
        self.mails: list[dict[str, Any]] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())

            def handle(self) -> None:
                self.reply("220 sink ready")
                envelope: dict[str, Any] = {"to": []}
                while raw := self.rfile.readline():
                    command = raw.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        envelope["from"] = command.split(":", 1)[1].strip(" <>")
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        envelope["to"].append(command.split(":", 1)[1].strip(" <>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = b""
                        while (line := self.rfile.readline()) not in (b".\r\n", b""):
                            data += line
                        sink.mails.append({**envelope, "message": message_from_bytes(data)})
                        envelope = {"to": []}
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class HookReceiver:
    """A Slack-like incoming webhook: records JSON posts, answers `status`."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T000/B000"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def hook() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def alert_settings(smtp: SmtpSink, hook: HookReceiver) -> AlertSettings:
    smtp.mails.clear()
    hook.posts.clear()
    hook.status = 200
    return AlertSettings(
        PITWALL_ALERT_WEBHOOK_URL=hook.url,
        PITWALL_SMTP_HOST="127.0.0.1",
        PITWALL_SMTP_PORT=smtp.port,
        PITWALL_ALERT_EMAIL_TO="it@bayview.example, fixedops@bayview.example",
        PITWALL_ALERT_EMAIL_FROM="pitwall@bayview.example",
    )


@pytest.fixture
def rooftops(database: Database) -> dict[str, int]:
    load_sample_dealer(database)
    with database.sessions() as session:
        return {r.slug: r.id for r in session.scalars(select(Rooftop))}


def set_poll(database: Database, rooftop_id: int, last_success: datetime, failures: int) -> None:
    with database.transaction() as session:
        state = session.get(DmsPollState, rooftop_id) or DmsPollState(rooftop_id=rooftop_id)
        state.last_success_at = last_success
        state.consecutive_failures = failures
        state.last_error = "401 invalid_token (Bearer sekrit-token-123)" if failures else None
        session.add(state)


def add_messages(database: Database, rooftop_id: int, count: int, **fields: Any) -> None:
    with database.transaction() as session:
        start = session.scalar(select(OutboundMessage.id).order_by(OutboundMessage.id.desc()))
        for n in range(count):
            session.add(
                OutboundMessage(
                    rooftop_id=rooftop_id,
                    kind="status",
                    purpose="status",
                    dedupe_key=f"alerts:{(start or 0) + n + 1}:{fields}",
                    channel="sms",
                    **fields,
                )
            )


def test_stale_dms_alerts_once_then_recovers_once(
    database: Database,
    rooftops: dict[str, int],
    alert_settings: AlertSettings,
    smtp: SmtpSink,
    hook: HookReceiver,
) -> None:
    now = utcnow()
    set_poll(database, rooftops["bayview-toyota"], now - timedelta(minutes=1), 0)
    set_poll(database, rooftops["bayview-ford"], now - timedelta(minutes=40), 7)

    first = run_alert_checks(database, settings=alert_settings, clock=lambda: now)
    assert [n.key for n in first.sent] == ["dms:bayview-ford"]
    assert len(hook.posts) == 1 and hook.posts[0]["kind"] == "alert"
    assert "DMS not read for 40 minutes" in hook.posts[0]["text"]
    assert "sekrit-token-123" not in hook.posts[0]["text"]
    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert mail["to"] == ["it@bayview.example", "fixedops@bayview.example"]
    assert mail["message"]["Subject"].startswith("[Pitwall] ALERT: rooftop 'bayview-ford'")

    again = run_alert_checks(
        database, settings=alert_settings, clock=lambda: now + timedelta(minutes=1)
    )
    assert again.sent == [] and len(hook.posts) == 1 and len(smtp.mails) == 1

    later = now + timedelta(minutes=2)
    set_poll(database, rooftops["bayview-ford"], later, 0)
    recovered = run_alert_checks(database, settings=alert_settings, clock=lambda: later)
    assert [(n.key, n.kind) for n in recovered.sent] == [("dms:bayview-ford", "recovery")]
    assert hook.posts[-1]["kind"] == "recovery"
    assert smtp.mails[-1]["message"]["Subject"].startswith("[Pitwall] RECOVERED:")
    with database.sessions() as session:
        alert = session.get(Alert, "dms:bayview-ford")
        assert alert is not None and alert.resolved_at is not None

    # Breaking again is a new incident: a new alert.
    set_poll(database, rooftops["bayview-ford"], later, 2)
    reopened = run_alert_checks(
        database, settings=alert_settings, clock=lambda: later + timedelta(minutes=30)
    )
    assert ("dms:bayview-ford", "alert") in [(n.key, n.kind) for n in reopened.sent]


def test_outbox_backlog_and_delivery_failures(
    database: Database, rooftops: dict[str, int], alert_settings: AlertSettings, hook: HookReceiver
) -> None:
    now = utcnow()
    for rooftop_id in rooftops.values():
        set_poll(database, rooftop_id, now, 0)
    toyota = rooftops["bayview-toyota"]
    add_messages(database, toyota, 2, state="pending", not_before=now - timedelta(minutes=30))
    add_messages(database, toyota, 8, state="delivered")
    add_messages(database, toyota, 4, state="undelivered", error_code=30003)

    run = run_alert_checks(database, settings=alert_settings, clock=lambda: now)
    assert sorted(n.key for n in run.sent) == ["delivery:failures", "outbox:backlog"]
    texts = " ".join(p["text"] for p in hook.posts)
    assert "2 message(s) due for more than 10 minutes" in texts
    assert "4 of 12 messages (33%) failed or undelivered" in texts


def test_few_failures_do_not_alert(
    database: Database, rooftops: dict[str, int], alert_settings: AlertSettings
) -> None:
    now = utcnow()
    for rooftop_id in rooftops.values():
        set_poll(database, rooftop_id, now, 0)
    add_messages(database, rooftops["bayview-ford"], 3, state="failed")
    assert run_alert_checks(database, settings=alert_settings, clock=lambda: now).sent == []


def test_twilio_auth_opened_by_the_dispatcher_clears_on_the_next_send(
    database: Database, rooftops: dict[str, int], alert_settings: AlertSettings, hook: HookReceiver
) -> None:
    now = utcnow()
    for rooftop_id in rooftops.values():
        set_poll(database, rooftop_id, now, 0)
    with database.transaction() as session:
        assert open_alert(session, key="twilio:auth", message="Twilio said 20003", now=now)
        assert not open_alert(session, key="twilio:auth", message="again", now=now)
    run = run_alert_checks(database, settings=alert_settings, clock=lambda: now)
    assert [n.key for n in run.sent] == ["twilio:auth"]
    assert run_alert_checks(database, settings=alert_settings, clock=lambda: now).sent == []

    sent_at = now + timedelta(minutes=3)
    add_messages(database, rooftops["bayview-toyota"], 1, state="sent", sent_at=sent_at)
    cleared = run_alert_checks(database, settings=alert_settings, clock=lambda: sent_at)
    assert [(n.key, n.kind) for n in cleared.sent] == [("twilio:auth", "recovery")]


def test_a_rejected_credential_seen_on_messages_opens_twilio_auth(
    database: Database, rooftops: dict[str, int], alert_settings: AlertSettings
) -> None:
    now = utcnow()
    for rooftop_id in rooftops.values():
        set_poll(database, rooftop_id, now, 0)
    add_messages(database, rooftops["bayview-toyota"], 1, state="failed", error_code=20003)
    run = run_alert_checks(database, settings=alert_settings, clock=lambda: now)
    assert [n.key for n in run.sent] == ["twilio:auth"]


def test_a_notice_no_channel_took_is_retried(
    database: Database, rooftops: dict[str, int], hook: HookReceiver
) -> None:
    now = utcnow()
    set_poll(database, rooftops["bayview-toyota"], now, 0)
    set_poll(database, rooftops["bayview-ford"], now - timedelta(hours=1), 1)
    settings = AlertSettings(PITWALL_ALERT_WEBHOOK_URL=hook.url)
    hook.posts.clear()
    hook.status = 500
    failed = run_alert_checks(database, settings=settings, clock=lambda: now)
    assert failed.sent == [] and [n.key for n in failed.failed] == ["dms:bayview-ford"]
    hook.status = 200
    retried = run_alert_checks(database, settings=settings, clock=lambda: now)
    assert [n.key for n in retried.sent] == ["dms:bayview-ford"]
    assert len(hook.posts) == 2


def test_email_through_an_injected_smtp_with_starttls_and_login() -> None:
    calls: list[tuple[str, Any]] = []

    class FakeSmtp:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            calls.append(("connect", (host, port)))

        def __enter__(self) -> FakeSmtp:
            return self

        def __exit__(self, *exc: object) -> None:
            calls.append(("quit", None))

        def starttls(self) -> None:
            calls.append(("starttls", None))

        def login(self, user: str, password: str) -> None:
            calls.append(("login", user))

        def send_message(self, mail: Any) -> None:
            calls.append(("send", mail["To"]))

    settings = AlertSettings(
        PITWALL_SMTP_HOST="smtp.example",
        PITWALL_SMTP_PORT=587,
        PITWALL_SMTP_STARTTLS=True,
        PITWALL_SMTP_USERNAME="alerts",
        PITWALL_SMTP_PASSWORD="pw-123456",
        PITWALL_ALERT_EMAIL_TO="it@bayview.example",
    )
    from app.ops.alerts import Notice

    notice = Notice("outbox:backlog", "alert", "outbox backed up", utcnow(), utcnow())
    assert AlertNotifier(settings, smtp_factory=FakeSmtp).deliver(notice)
    assert [c[0] for c in calls] == ["connect", "starttls", "login", "send", "quit"]
    assert calls[0][1] == ("smtp.example", 587)
