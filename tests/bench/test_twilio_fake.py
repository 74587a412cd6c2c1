"""The benchmarks' Twilio fake answers what the official client reads, over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from bench.twilio_fake import FakeTwilio
from integrations.twilio.base import OutgoingMessage
from integrations.twilio.gateway import TwilioGateway

ACCOUNT = "AC" + "c" * 32


def test_the_fake_answers_the_official_client_with_unique_sids() -> None:
    with FakeTwilio(latency_ms=0) as fake:
        gateway = TwilioGateway(ACCOUNT, "token", api_url=fake.url, timeout=10)
        try:
            sent = [
                gateway.send(OutgoingMessage(to="+14155550142", from_="+14155550100", body=body))
                for body in ("Your RAV4 is ready.", "Tu Corolla está listo ✅ & 100% = paid")
            ]
            found = gateway.find_existing(
                to="+14155550142",
                from_="+14155550100",
                messaging_service_sid=None,
                body="Your RAV4 is ready.",
                content_sid=None,
                created_after=datetime.now(UTC) - timedelta(minutes=1),
            )
            assert gateway.check_credentials() == "bench fake"
        finally:
            gateway.close()
        stats = fake.stats()
        assert {k: stats[k] for k in ("count", "distinct", "duplicates")} == {
            "count": 2,
            "distinct": 2,
            "duplicates": 0,
        }
        # When the last text was answered (the end-to-end bench's finish line).
        assert time.time() - 60 < stats["last_accept"] <= time.time()
        assert fake.bodies() == ["Your RAV4 is ready.", "Tu Corolla está listo ✅ & 100% = paid"]
    assert len({s.sid for s in sent}) == 2
    assert all(s.sid.startswith("SM") and len(s.sid) == 34 for s in sent)
    assert all(s.status == "queued" and s.date_created is not None for s in sent)
    assert found is not None and found.sid == sent[0].sid
