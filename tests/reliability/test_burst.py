"""A burst of inbound texts while the outbox drains: every inbound stored once, every
outbound sent once (the 1,000 / 5,000 version is tests/soak)."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.deps import Database
from tests.app.messaging.conftest import Shop
from tests.reliability.burst import assert_burst_exactly_once
from tests.support import ServedApp


@pytest.mark.slow
def test_inbound_burst_while_dispatching(
    shop: Shop, database: Database, app_settings: Settings, served_app: ServedApp
) -> None:
    assert_burst_exactly_once(
        database=database,
        settings=app_settings,
        app_url=served_app.url,
        rooftop_id=shop.rooftop_id,
        group_id=shop.group_id,
        inbound=150,
        outbound=600,
        window_s=3,
    )
