"""Inbound texts arriving in a burst while the outbox drains: shared by the reliability
test (small) and the soak (1,000 inbound in 10 s while 5,000 outbound are sent)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import func, insert, select

from app.config import Settings
from app.conversations.models import InboundMessage
from app.customers.models import Phone
from app.db import utcnow
from app.deps import Database
from app.messaging.dispatcher import dispatch_due
from app.messaging.models import OutboundMessage
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature


@dataclass
class BurstReport:
    inbound_posted: int
    inbound_retried: int
    inbound_stored: int
    inbound_lost: int
    inbound_duplicated: int
    outbound: int
    outbound_sent: int
    outbound_lost: int
    outbound_duplicated: int
    seconds: float


def queue_outbound(database: Database, *, rooftop_id: int, group_id: int, total: int) -> None:
    now = utcnow()
    with database.transaction() as session:
        numbers = [f"+1628555{n:04d}" for n in range(total)]
        session.execute(
            insert(Phone),
            [
                {"group_id": group_id, "e164": e, "as_typed": e, "kind": "mobile", "textable": True}
                for e in numbers
            ],
        )
        rows = session.execute(select(Phone.e164, Phone.id).where(Phone.e164.in_(numbers)))
        ids = {e164: id_ for e164, id_ in rows}
        session.execute(
            insert(OutboundMessage),
            [
                {
                    "rooftop_id": rooftop_id,
                    "phone_id": ids[e],
                    "kind": "status",
                    "purpose": "status",
                    "dedupe_key": f"burst:{n}",
                    "channel": "sms",
                    "to_address": e,
                    "from_address": "+14155550100",
                    "body": f"Your car is ready ({n})",
                    "state": "pending",
                    "not_before": now,
                    "attempt": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, e in enumerate(numbers)
            ],
        )


def run_burst(
    database: Database,
    *,
    settings: Settings,
    app_url: str,
    sandbox: SandboxServer,
    rooftop_id: int,
    group_id: int,
    inbound: int,
    outbound: int,
    window_s: float,
    workers: int = 2,
) -> BurstReport:
    """Queue `outbound`, drain it with `workers` dispatcher threads while `inbound` signed
    texts (10 % posted twice, as Twilio retries) arrive over `window_s` seconds."""
    queue_outbound(database, rooftop_id=rooftop_id, group_id=group_id, total=outbound)
    started = time.monotonic()
    done = threading.Event()

    def drain(n: int) -> None:
        gateway = TwilioGateway(
            settings.twilio_account_sid, settings.twilio_auth_token, api_url=sandbox.url
        )
        try:
            idle = 0
            while idle < 3:
                result = dispatch_due(
                    database,
                    gateway=gateway,
                    public_url=settings.public_url,
                    worker_id=f"burst-{n}",
                    batch_size=100,
                    concurrency=8,
                )
                idle = idle + 1 if result.claimed == 0 else 0
                if result.claimed == 0:
                    time.sleep(0.2)
        finally:
            gateway.close()

    url = settings.public_url + "/webhooks/twilio/messages"
    forms = [
        {
            "MessageSid": f"SM{n:032x}",
            "AccountSid": settings.twilio_account_sid,
            "From": f"+1707555{n % 10000:04d}",
            "To": "+14155550100",
            "Body": f"question {n}",
            "NumMedia": "0",
        }
        for n in range(inbound)
    ]
    retried = forms[::10]

    def post(client: httpx.Client, form: dict[str, str]) -> int:
        signature = compute_signature(settings.twilio_auth_token, url, form)
        for _ in range(5):  # Twilio retries a 5xx or a timeout
            try:
                response = client.post(
                    "/webhooks/twilio/messages", data=form, headers={SIGNATURE_HEADER: signature}
                )
                if response.status_code < 500:
                    return response.status_code
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return 599

    drainers = [threading.Thread(target=drain, args=(n,)) for n in range(workers)]
    for thread in drainers:
        thread.start()
    statuses: Counter[int] = Counter()
    with (
        httpx.Client(base_url=app_url, timeout=30) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        futures = []
        for n, form in enumerate([*forms, *retried]):
            target = started + window_s * n / (len(forms) + len(retried))
            time.sleep(max(0.0, target - time.monotonic()))
            futures.append(pool.submit(post, client, form))
        for future in futures:
            statuses[future.result()] += 1
    for thread in drainers:
        thread.join(timeout=600)
    done.set()
    seconds = time.monotonic() - started
    with database.sessions() as session:
        sids = Counter(session.scalars(select(InboundMessage.provider_sid)))
        pending = session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.state.in_(("pending", "claimed", "sending")))
        )
    held = Counter(
        m.body
        for m in sandbox.state.list_messages()
        if m.body and m.body.startswith("Your car is ready (")
    )
    expected = {f"SM{n:032x}" for n in range(inbound)}
    assert pending == 0, f"{pending} outbound still pending; statuses {statuses}"
    return BurstReport(
        inbound_posted=len(forms),
        inbound_retried=len(retried),
        inbound_stored=len(set(sids) & expected),
        inbound_lost=len(expected - set(sids)),
        inbound_duplicated=sum(n - 1 for n in sids.values()),
        outbound=outbound,
        outbound_sent=len(held),
        outbound_lost=outbound - len(held),
        outbound_duplicated=sum(n - 1 for n in held.values()),
        seconds=round(seconds, 1),
    )


def assert_burst_exactly_once(
    *,
    database: Database,
    settings: Settings,
    app_url: str,
    rooftop_id: int,
    group_id: int,
    **sizes: int,
) -> BurstReport:
    """Run a burst against a fresh sandbox (no callbacks) and require 0 lost, 0 duplicated."""
    config = SandboxConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        callbacks=False,
    )
    with SandboxServer(config) as sandbox:
        report = run_burst(
            database,
            settings=settings,
            app_url=app_url,
            sandbox=sandbox,
            rooftop_id=rooftop_id,
            group_id=group_id,
            **sizes,
        )
    print(f"\n{report}")
    assert (report.inbound_lost, report.inbound_duplicated) == (0, 0)
    assert (report.outbound_lost, report.outbound_duplicated) == (0, 0)
    return report
