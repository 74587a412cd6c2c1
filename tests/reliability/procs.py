"""Test-only processes for the fault suite: `python -m tests.reliability.procs <what>`.

`dispatch`: the real dispatcher against PITWALL_DATABASE_URL and the sandbox at
SANDBOX_URL. PITWALL_TEST_PAUSE_AFTER_ACCEPT=<file> makes the first send touch `file`
once Twilio accepted it and then wait, so the test can SIGSTOP the process there
(between Twilio's answer and the commit), let another worker take over, and SIGCONT it.

`poll`: one DMS poll of rooftop PITWALL_TEST_ROOFTOP with the production change
hooks, from a scripted DMS of two pages; the process SIGKILLs itself inside the
second page's transaction, after PITWALL_TEST_KILL_AFTER records were applied.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import app.models  # noqa: F401
from app.db import make_engine, make_session_factory
from app.deps import Database


def _database() -> Database:
    engine = make_engine(os.environ["PITWALL_DATABASE_URL"], pool_size=4)
    return Database(engine=engine, sessions=make_session_factory(engine))


def dispatch() -> int:
    from app.messaging.dispatcher import dispatch_due
    from integrations.twilio.base import OutgoingMessage, SentMessage
    from integrations.twilio.gateway import TwilioGateway

    env = os.environ
    database = _database()
    gateway = TwilioGateway(
        env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"], api_url=env["SANDBOX_URL"]
    )
    marker = env.get("PITWALL_TEST_PAUSE_AFTER_ACCEPT")
    real_send = gateway.send
    paused = False

    def send_then_pause(message: OutgoingMessage) -> SentMessage:
        nonlocal paused
        sent = real_send(message)
        if marker and not paused:
            paused = True
            Path(marker).write_text(sent.sid)
            time.sleep(2)  # the test stops the process somewhere in here
        return sent

    gateway.send = send_then_pause  # type: ignore[method-assign]
    result = dispatch_due(
        database,
        gateway=gateway,
        public_url=env["PITWALL_PUBLIC_URL"],
        worker_id=f"proc-{os.getpid()}",
        batch_size=50,
        concurrency=1,
        lease=timedelta(seconds=float(env.get("PITWALL_TEST_LEASE_SECONDS", "300"))),
    )
    print(json.dumps({n: getattr(result, n) for n in ("claimed", "sent", "lost_claims")}))
    return 0


def poll() -> int:
    from app.repair_orders.changes import RepairOrderChange
    from app.repair_orders.poller import poll_rooftop
    from app.wiring import change_hooks
    from tests.app.repair_orders.conftest import ScriptedDms

    env = os.environ
    pages = json.loads(Path(env["PITWALL_TEST_PAGES"]).read_text())
    kill_after = int(env["PITWALL_TEST_KILL_AFTER"])
    first_page = {r["ro_number"] for r in pages[0]}
    applied = 0

    def die_mid_page(_session: object, change: RepairOrderChange) -> None:
        nonlocal applied
        if change.ro.ro_number in first_page:
            return
        applied += 1
        if applied > kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # inside the page's open transaction

    now = datetime.fromisoformat(env["PITWALL_TEST_NOW"]).astimezone(UTC)
    poll_rooftop(
        _database(),
        rooftop_id=int(env["PITWALL_TEST_ROOFTOP"]),
        adapter_factory=lambda _r: ScriptedDms(pages=pages),
        hooks=[*change_hooks(), die_mid_page],
        clock=lambda: now,
        worker_id=f"proc-{os.getpid()}",
    )
    return 0  # not reached


if __name__ == "__main__":
    sys.exit({"dispatch": dispatch, "poll": poll}[sys.argv[1]]())
