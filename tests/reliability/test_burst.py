"""A burst of inbound texts while the outbox drains: every inbound stored once, every
outbound sent once (the 1,000 / 5,000 version is tests/soak)."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.deps import Database
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.app.messaging.conftest import Shop
from tests.reliability.burst import run_burst
from tests.support import ServedApp


@pytest.mark.slow
def test_inbound_burst_while_dispatching(
    shop: Shop, database: Database, app_settings: Settings, served_app: ServedApp
) -> None:
    config = SandboxConfig(
        account_sid=app_settings.twilio_account_sid,
        auth_token=app_settings.twilio_auth_token,
        callbacks=False,
    )
    with SandboxServer(config) as sandbox:
        report = run_burst(
            database,
            settings=app_settings,
            app_url=served_app.url,
            sandbox=sandbox,
            rooftop_id=shop.rooftop_id,
            group_id=shop.group_id,
            inbound=150,
            outbound=600,
            window_s=3,
        )
    print(f"\n{report}")
    assert (report.inbound_lost, report.inbound_duplicated) == (0, 0)
    assert (report.outbound_lost, report.outbound_duplicated) == (0, 0)
