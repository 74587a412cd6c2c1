"""`make soak`: 1,000 inbound texts in 10 s while 5,000 outbound are dispatching, on loopback.

Bounded: the sandbox answers at once and the whole run must end within its timeouts.
"""

from __future__ import annotations

import pytest

from app.config import Settings
from app.deps import Database
from tests.app.messaging.conftest import Shop
from tests.reliability.burst import assert_burst_exactly_once
from tests.support import ServedApp

pytestmark = pytest.mark.soak


def test_thousand_inbound_in_ten_seconds_while_five_thousand_go_out(
    shop: Shop, database: Database, app_settings: Settings, served_app: ServedApp
) -> None:
    assert_burst_exactly_once(
        database=database,
        settings=app_settings,
        app_url=served_app.url,
        rooftop_id=shop.rooftop_id,
        group_id=shop.group_id,
        inbound=1000,
        outbound=5000,
        window_s=10,
        workers=2,
    )
