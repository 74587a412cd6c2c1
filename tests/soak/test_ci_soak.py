"""CI's soak (`make soak-ci`, run by .ci/run on both databases): a minute of signed inbound
texts while a backlog of outbound texts is sent, every one exactly once.

The same burst as `make soak`'s, stretched: 1,200 inbound over 60 s (a tenth posted twice,
as Twilio retries) while 12,000 outbound are dispatched by two workers. Bounded: the
sandbox answers at once and the run must end within its timeouts (~1-2 minutes).
"""

from __future__ import annotations

import pytest

from app.config import Settings
from app.deps import Database
from tests.app.messaging.conftest import Shop
from tests.reliability.burst import assert_burst_exactly_once
from tests.support import ServedApp

pytestmark = [pytest.mark.soak, pytest.mark.ci_soak]


def test_a_minute_of_inbound_while_twelve_thousand_go_out_each_exactly_once(
    shop: Shop, database: Database, app_settings: Settings, served_app: ServedApp
) -> None:
    assert_burst_exactly_once(
        database=database,
        settings=app_settings,
        app_url=served_app.url,
        rooftop_id=shop.rooftop_id,
        group_id=shop.group_id,
        inbound=1200,
        outbound=12_000,
        window_s=60,
        workers=2,
    )
