"""Test-only worker process: `python -m tests.app.messaging.worker_proc`.

Runs the real dispatcher against the database and sandbox named in the
environment. PITWALL_TEST_KILL_AT=before_send|after_send makes the process
SIGKILL itself around the first Twilio create: the hook lives here, wrapped
around the gateway, never in production code. PITWALL_TEST_DRAIN=1 keeps
dispatching until nothing is due. Prints the totals as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import timedelta

import app.models  # noqa: F401  (every mapped class, for relationships and FKs)
from app.db import make_engine, make_session_factory
from app.deps import Database
from app.messaging.dispatcher import dispatch_due
from integrations.twilio.base import OutgoingMessage, SentMessage
from integrations.twilio.gateway import TwilioGateway


def main() -> int:
    env = os.environ
    engine = make_engine(env["PITWALL_DATABASE_URL"], pool_size=8)
    database = Database(engine=engine, sessions=make_session_factory(engine))
    gateway = TwilioGateway(
        env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"], api_url=env["SANDBOX_URL"]
    )
    kill_at = env.get("PITWALL_TEST_KILL_AT", "")
    if kill_at:
        real_send = gateway.send

        def send_then_die(msg: OutgoingMessage) -> SentMessage:
            if kill_at == "before_send":
                os.kill(os.getpid(), signal.SIGKILL)
            sent = real_send(msg)
            if kill_at == "after_send":
                os.kill(os.getpid(), signal.SIGKILL)
            return sent

        gateway.send = send_then_die  # type: ignore[method-assign]
    totals = {"claimed": 0, "sent": 0, "adopted": 0, "lost_claims": 0, "runs": 0}
    while True:
        result = dispatch_due(
            database,
            gateway=gateway,
            public_url=env["PITWALL_PUBLIC_URL"],
            worker_id=f"proc-{os.getpid()}",
            batch_size=int(env.get("PITWALL_TEST_BATCH", "50")),
            concurrency=int(env.get("PITWALL_TEST_CONCURRENCY", "1")),
            lease=timedelta(minutes=5),
        )
        totals["runs"] += 1
        for name in ("claimed", "sent", "adopted", "lost_claims"):
            totals[name] += getattr(result, name)
        if not env.get("PITWALL_TEST_DRAIN") or result.claimed == 0:
            break
    gateway.close()
    engine.dispose()
    print(json.dumps(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
