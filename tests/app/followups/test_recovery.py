"""Recovery attribution: which declined lines came back, for how much, after which touch."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.deps import Database
from app.followups.models import Recovery
from tests.app.followups.shop import Line, Shop
from tests.app.followups.test_plans import BRAKES, LA, WIPERS, at, closed_ro, run_at


def recoveries(shop: Shop) -> list[Recovery]:
    shop.session.flush()
    return list(shop.session.scalars(select(Recovery).order_by(Recovery.declined_line_id)))


def approve_later(
    shop: Shop,
    slug: str,
    number: str,
    *,
    customer,
    vehicle,
    when: datetime,  # type: ignore[no-untyped-def]
    op_code: str = "BRKPAD",
    cents: int = 39900,
    status: str = "approved",
):
    return shop.open_ro(
        slug,
        number,
        customer=customer,
        vehicle=vehicle,
        at=when,
        lines=(Line("A", op_code, "Brakes", cents, status),),
    )


def test_same_vin_at_another_rooftop_after_a_touch_and_a_reply(
    shop: Shop, dealer: Database
) -> None:
    ro, customer, vehicle = closed_ro(shop, lines=(BRAKES, WIPERS))
    run_at(shop, dealer, at(LA, 2026, 11, 1, 10))
    shop.mark_sent(at(LA, 2026, 11, 1, 10, 1))
    shop.reply(customer, "how much again?", at=at(LA, 2026, 11, 1, 12))
    run_at(shop, dealer, at(LA, 2026, 11, 8, 10))  # touch 2 queued but never sent (say, the cap)
    # The customer brings the car to the Ford store; the DMS there knows it by VIN only.
    other = shop.customer("Samuel", "Lee", "+14155550777")
    back = approve_later(
        shop, "bayview-ford", "F77", customer=other, vehicle=vehicle, when=at(LA, 2026, 11, 9, 8)
    )
    [recovery] = recoveries(shop)
    brakes = next(ln for ln in ro.lines if ln.op_code == "BRKPAD")
    assert recovery.declined_line_id == brakes.id
    assert recovery.recovering_line_id == back.lines[0].id
    assert recovery.recovered_cents == 41200  # the declined amount, not the later price
    assert recovery.preceding_touch_no == 1  # the last touch SENT, not the queued one
    assert recovery.customer_replied is True
    assert recovery.recovered_at == at(LA, 2026, 11, 9, 8)


def test_no_vin_matches_the_same_customer(shop: Shop) -> None:
    customer = shop.customer("Ana", "Diaz", "+14155550143")
    no_vin = shop.vehicle(customer, None, "2009 Honda Civic")
    closed_ro(shop, customer=customer, vehicle=no_vin, lines=(BRAKES,))
    approve_later(
        shop,
        "harbor-honda",
        "H1",
        customer=customer,
        vehicle=None,
        when=at(LA, 2027, 2, 1, 9),
        status="completed",
    )
    [recovery] = recoveries(shop)
    assert (recovery.preceding_touch_no, recovery.customer_replied) == (None, False)


def test_a_different_vehicle_of_the_same_customer_is_not_a_recovery(shop: Shop) -> None:
    _, customer, _ = closed_ro(shop, lines=(BRAKES,))
    second_car = shop.vehicle(customer, "1HGCM82633A004352", "2018 Honda Accord")
    approve_later(
        shop,
        "bayview-toyota",
        "R5",
        customer=customer,
        vehicle=second_car,
        when=at(LA, 2026, 11, 20, 9),
    )
    assert recoveries(shop) == []


def test_outside_the_groups_window_is_not_recovered(shop: Shop) -> None:
    _, customer, vehicle = closed_ro(shop, lines=(BRAKES,))  # closed Oct 29 2026
    approve_later(
        shop,
        "bayview-toyota",
        "R6",
        customer=customer,
        vehicle=vehicle,
        when=at(LA, 2026, 10, 29, 10) + timedelta(days=366),
    )
    assert recoveries(shop) == []
    bo = shop.customer("Bo", "Chen", "+14155550144")
    _, customer2, vehicle2 = closed_ro(
        shop, "R7", lines=(BRAKES,), customer=bo, vehicle=shop.vehicle(bo, "2T3P1RFV8MC123456")
    )
    approve_later(
        shop,
        "bayview-toyota",
        "R8",
        customer=customer2,
        vehicle=vehicle2,
        when=at(LA, 2026, 10, 29, 10) + timedelta(days=364),
    )
    assert len(recoveries(shop)) == 1


def test_another_op_code_or_a_second_decline_is_not_a_recovery(shop: Shop) -> None:
    _, customer, vehicle = closed_ro(shop, lines=(BRAKES,))
    approve_later(
        shop,
        "bayview-toyota",
        "R2",
        customer=customer,
        vehicle=vehicle,
        when=at(LA, 2026, 11, 2, 9),
        op_code="ALIGN",
    )
    approve_later(
        shop,
        "bayview-toyota",
        "R3",
        customer=customer,
        vehicle=vehicle,
        when=at(LA, 2026, 11, 3, 9),
        status="declined",
    )
    assert recoveries(shop) == []


def test_approval_counts_once_even_when_the_dms_repeats_it(shop: Shop) -> None:
    _, customer, vehicle = closed_ro(shop, lines=(BRAKES,))
    back = approve_later(
        shop,
        "bayview-toyota",
        "R2",
        customer=customer,
        vehicle=vehicle,
        when=at(LA, 2026, 11, 2, 9),
    )
    shop.set_line(back, "A", "completed", at=at(LA, 2026, 11, 2, 15))  # approved -> completed
    shop.close(back, at=at(LA, 2026, 11, 2, 16))
    assert len(recoveries(shop)) == 1


def test_a_line_approved_during_the_visit_recovers_an_earlier_decline(shop: Shop) -> None:
    _, customer, vehicle = closed_ro(shop, lines=(BRAKES,))
    visit = approve_later(
        shop,
        "bayview-toyota",
        "R2",
        customer=customer,
        vehicle=vehicle,
        when=at(LA, 2026, 12, 2, 9),
        status="pending",
    )
    assert recoveries(shop) == []  # booked, not yet recovered
    shop.set_line(visit, "A", "approved", at=at(LA, 2026, 12, 2, 11))
    [recovery] = recoveries(shop)
    assert recovery.recovered_at == at(LA, 2026, 12, 2, 11)
