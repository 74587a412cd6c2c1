"""The daily cap keeps the message that matters: the RO's latest state in one text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from app.db import utcnow
from app.dealers.models import Rooftop
from app.repair_orders.changes import RepairOrderChange
from app.repair_orders.models import RepairOrder
from app.wiring import change_hooks
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Shop, sent_to


def move_promised_time(shop: Shop, ro_id: int, promised_at: datetime) -> None:
    """The DMS moved the promised time: every change hook runs, as the poller runs them."""
    with shop.database.transaction() as session:
        ro = session.get_one(RepairOrder, ro_id)
        previous, ro.promised_at = ro.promised_at, promised_at
        session.flush()
        change = RepairOrderChange(
            ro=ro,
            rooftop=session.get_one(Rooftop, shop.rooftop_id),
            is_new=False,
            previous_stage=ro.stage,
            previous_promised_at=previous,
            at=utcnow(),
        )
        for hook in change_hooks():
            hook(session, change)


def test_a_capped_stage_text_goes_out_with_the_new_ready_time_in_one_text(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(daily_cap=1)
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, promised_at=utcnow() + timedelta(hours=2))
    assert dispatch().sent == 1  # the welcome uses up today's cap
    shop.move(ro, "awaiting_parts")
    assert dispatch().sent == 0  # "waiting on parts" is held by the cap
    move_promised_time(shop, ro, utcnow() + timedelta(hours=5))
    assert dispatch().sent == 1
    texts = [m.body for m in sent_to(sandbox)]
    assert len(texts) == 2
    (combined_text,) = [text for text in texts if "is waiting on parts" in text]
    assert "New estimated ready time:" in combined_text
    assert not any("has changed" in text for text in texts)  # no stale "ready time changed"
    held = next(m for m in shop.messages() if m.stage == "awaiting_parts" and m.kind == "status")
    combined = next(m for m in shop.messages() if m.kind == "watchdog")
    assert held.state in ("superseded", "expired")
    assert held.suppressed_reason == (
        f"{held.suppressed_reason.split(';')[0]}; sent instead with the new ready time "
        f"in message {combined.id}"
    )
    assert held.suppressed_reason.startswith("daily cap 1 reached for ")


def test_a_stage_text_not_yet_dispatched_but_over_the_cap_is_combined_too(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(daily_cap=1)
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, promised_at=utcnow() + timedelta(hours=2))
    assert dispatch().sent == 1
    shop.move(ro, "in_repair")  # queued, and the cap would hold it
    move_promised_time(shop, ro, utcnow() + timedelta(hours=6))
    assert dispatch().sent == 1
    (last,) = [m.body for m in sent_to(sandbox) if "technicians are now working" in m.body]
    assert "We expect it ready by" in last
    held = next(m for m in shop.messages() if m.stage == "in_repair" and m.kind == "status")
    assert held.state == "superseded"
    assert "daily cap 1 reached" in (held.suppressed_reason or "")


def test_under_the_cap_a_moved_time_is_the_watchdogs_short_notice(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, promised_at=utcnow() + timedelta(hours=2))
    assert dispatch().sent == 1
    shop.move(ro, "awaiting_parts")
    assert dispatch().sent == 1
    move_promised_time(shop, ro, utcnow() + timedelta(hours=5))
    assert dispatch().sent == 1
    assert sum("has changed" in m.body for m in sent_to(sandbox)) == 1
    assert all(m.state != "superseded" for m in shop.messages())
