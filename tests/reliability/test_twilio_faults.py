"""Twilio misbehaving in every documented way at once: each customer gets their text once
(or, for 21610, never and the consent is revoked). Lost and duplicated are counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Settings
from app.customers.models import Consent
from app.messaging.jobs import refresh_unconfirmed
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Clock, Shop, sent_to

FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("500_before", {}),
    ("500_after", {}),
    ("429", {"retry_after": 2}),
    ("delay_ms", {"delay_ms": 2500}),  # beyond the gateway's 1 s timeout: ambiguous
    ("reset", {}),
    ("duplicate", {}),
    ("out_of_order", {}),
    ("500_before", {}),
    ("500_after", {}),
    ("reset", {}),
]


@pytest.mark.slow
def test_every_fault_at_once_sends_each_text_exactly_once(
    shop: Shop,
    sandbox: SandboxServer,
    dispatch: Callable[..., Any],
    clock: Clock,
    app_settings: Settings,
    database: Any,
) -> None:
    total = 16
    numbers = [f"+1415555{2000 + n}" for n in range(total)]
    for n, number in enumerate(numbers):
        customer, _ = shop.customer(number)
        shop.repair_order(customer, number=f"F{n}")
    for kind, params in FAULTS:
        sandbox.inject(kind, **params)
    sandbox.inject("error", code=21610, status=400)  # the last customer unsubscribed
    impatient = TwilioGateway(
        app_settings.twilio_account_sid,
        app_settings.twilio_auth_token,
        api_url=sandbox.url,
        timeout=1,
    )
    try:
        for _ in range(30):
            result = dispatch(gateway=impatient, concurrency=1)
            clock.advance(minutes=6)  # past any retry and any lease
            if not [m for m in shop.messages() if m.state in ("pending", "claimed", "sending")]:
                break
        sandbox.wait_for_callbacks(15)
        clock.advance(minutes=15)
        refresh_unconfirmed(database, gateway=impatient, clock=clock)
    finally:
        impatient.close()
    assert result is not None
    per_number = Counter(m.to for m in sent_to(sandbox))
    duplicates = sum(n - 1 for n in per_number.values())
    states = Counter(m.state for m in shop.messages())
    failed = [m for m in shop.messages() if m.state == "failed"]
    lost = total - len(per_number) - len(failed)
    print(f"\n{len(FAULTS) + 1} Twilio faults: lost {lost}, duplicated {duplicates}, {states}")
    assert (lost, duplicates) == (0, 0), (per_number, states)
    assert len(failed) == 1 and failed[0].error_code == 21610
    assert set(states) <= {"delivered", "failed"}, states
    with shop.database.sessions() as session:
        revoked = session.scalars(select(Consent).where(Consent.action == "revoked")).all()
    assert revoked, "21610 revokes the number's consent"
