"""Which RO changes put which status text in the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.app.messaging.conftest import Shop


def test_diagnosing_and_quality_check_send_nothing(shop: Shop) -> None:
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, stage="diagnosing")
    shop.move(ro, "quality_check")
    assert shop.messages() == []


def test_closing_the_ro_supersedes_what_was_not_sent_and_sends_nothing(shop: Shop) -> None:
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, stage="ready_for_pickup")
    shop.move(ro, "closed")
    (message,) = shop.messages()
    assert (message.state, message.suppressed_reason) == ("superseded", "repair order closed")


def test_waiting_on_parts_gives_the_new_promised_time_in_the_store_zone(shop: Shop) -> None:
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, stage="in_repair")
    shop.move(ro, "awaiting_parts", promised_at=datetime(2026, 11, 24, 0, 30, tzinfo=UTC))
    body = shop.messages()[-1].body or ""
    assert "New estimated ready time: 4:30 PM Mon Nov 23." in body  # 00:30 UTC is 4:30 PM PST


def test_spanish_customer_gets_spanish_and_the_record_shows_the_exact_text(shop: Shop) -> None:
    customer, _ = shop.customer(language="es")
    shop.repair_order(
        customer, lines=(("B", "Pastillas de freno", 41200, "pending"),), stage="awaiting_approval"
    )
    (message,) = shop.messages()
    assert message.template == "awaiting_approval.es"
    assert message.body and "Responda SI para aprobar" in message.body and "$412.00" in message.body
    assert message.dedupe_key == f"ro:{message.repair_order_id}:stage:awaiting_approval"


def test_no_customer_or_no_textable_phone_leaves_a_suppressed_record(shop: Shop) -> None:
    shop.repair_order(None, number="R1")
    customer, phone = shop.customer()
    from app.customers.models import Phone

    with shop.database.transaction() as session:
        found = session.get(Phone, phone)
        assert found is not None
        found.textable = False
    shop.repair_order(customer, number="R2")
    reasons = [m.suppressed_reason for m in shop.messages()]
    assert reasons == [
        "repair order has no customer to text",
        "customer has no textable phone on file",
    ]
    assert {m.state for m in shop.messages()} == {"suppressed"}


def test_a_broken_rooftop_override_does_not_break_the_poll(shop: Shop) -> None:
    shop.configure(templates={"checked_in": "Hi {{ frist_name }}"})
    customer, _ = shop.customer()
    shop.repair_order(customer)
    (message,) = shop.messages()
    assert message.state == "suppressed"
    assert "template checked_in.en failed" in (message.suppressed_reason or "")


def test_the_first_text_names_the_store_and_says_how_to_stop_whatever_its_stage(
    shop: Shop,
) -> None:
    """Issue 27: a car already in the shop when Pitwall goes live first hears "in repair"."""
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, stage="in_repair")
    (first,) = shop.messages()
    assert first.body is not None
    assert first.body.startswith("Bayview Toyota: ")
    assert first.body.endswith("\nReply STOP to opt out.")
    with shop.database.transaction() as session:
        from app.messaging.models import OutboundMessage

        session.get_one(OutboundMessage, first.id).state = "delivered"
    shop.move(ro, "awaiting_parts")
    second = shop.messages()[-1]
    assert second.body is not None and "STOP" not in second.body
    assert not second.body.startswith("Bayview Toyota: ")


def test_a_spanish_first_text_says_how_to_stop_in_spanish(shop: Shop) -> None:
    customer, _ = shop.customer(language="es")
    shop.repair_order(customer, stage="awaiting_parts")
    (first,) = shop.messages()
    assert first.body is not None
    assert first.body.endswith("\nResponda STOP para dejar de recibir mensajes.")
