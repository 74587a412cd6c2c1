"""Issue 31 point 6 in a real browser: the director's page reads at desktop and at 390 px."""

from __future__ import annotations

from typing import Any

import pytest

from app.conversations.models import Call
from app.db import utcnow
from app.deps import Database
from app.repair_orders.models import RoLine
from tests.app.web.conftest import World
from tests.browser.test_admin_editing import log_in, page_width, shot
from tests.browser.test_admin_editing import phone as phone  # the 390 px fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def figures(world: World, database: Database) -> World:
    with database.transaction() as session:
        for n in range(3):
            session.add(
                Call(
                    call_sid=f"CA{n:0>32}",
                    rooftop_id=world.toyota_id,
                    from_address="+14155550142",
                    to_address="+14155550100",
                    after_hours=True,
                    outcome="after_hours",
                    started_at=utcnow(),
                )
            )
        session.add(
            RoLine(
                repair_order_id=world.ro["bayview-toyota"],
                line_code="B",
                op_code="BRKPAD",
                description="Front brake pads",
                amount_cents=650000,
                status="declined",
            )
        )
    return world


def _smallest_chart_text_px(page: Any) -> float:
    return float(
        page.evaluate(
            """() => Math.min(...[...document.querySelectorAll('svg.chart text')]
                 .map(t => t.getBoundingClientRect().height).filter(h => h > 0))"""
        )
    )


def test_reports_at_desktop_and_phone_width(figures: World, page: Any, phone: Any) -> None:
    log_in(page, "director@bayview.example", "/reports")
    page.goto("/reports?rooftop=bayview-toyota&days=7")
    missed = page.locator("#missed").inner_text()
    assert "3 calls nobody answered, 3 of them while the store was closed" in missed
    assert "None of the $6,500.00 declined won back yet" in page.content()
    shot(page, "reports-desktop")
    log_in(phone, "director@bayview.example", "/reports")
    phone.goto("/reports?rooftop=bayview-toyota&days=30")
    shot(phone, "reports-phone")
    assert page_width(phone) <= 390
    # Chart labels render at least ~11 CSS px tall on the phone (they were ~6 px).
    assert _smallest_chart_text_px(phone) >= 11
