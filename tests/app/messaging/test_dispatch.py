"""Status texts reach each customer exactly once, over real HTTP to the Twilio sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.config import DEMO_ACCOUNT_SID
from app.customers.models import Consent, Phone
from app.messaging.models import OutboundMessage
from app.messaging.service import MessageRequest, enqueue
from app.ops.models import Alert
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxServer
from tests.app.messaging.conftest import Clock, Shop, sent_to

STAGES = ["checked_in", "awaiting_approval", "awaiting_parts", "in_repair", "ready_for_pickup"]


def wait_for_states(shop: Shop, sandbox: SandboxServer, *states: str) -> list[OutboundMessage]:
    assert sandbox.wait_for_callbacks(10)
    messages = shop.messages()
    assert {m.state for m in messages} <= set(states), [
        (m.id, m.state, m.suppressed_reason) for m in messages
    ]
    return messages


def test_one_message_per_stage_however_often_rules_and_worker_run(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    customer, _ = shop.customer()
    ro = shop.repair_order(customer, lines=(("B", "Front brake pads", 41200, "pending"),))
    for stage in STAGES:
        for _ in range(3):
            shop.move(ro, stage)  # the poller sees the same stage on every poll
            dispatch()
            dispatch()
        assert sandbox.wait_for_callbacks(10)

    bodies = [m.body for m in sent_to(sandbox, "+14155550142")]
    assert len(bodies) == len(STAGES)
    messages = wait_for_states(shop, sandbox, "delivered")
    assert [m.stage for m in messages] == STAGES
    assert all(m.provider_sid and m.num_segments for m in messages)
    welcome = messages[0].body or ""
    assert "Dana Ruiz" in welcome and "Reply STOP to opt out" in welcome


def test_newer_stage_supersedes_a_pending_one(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, _ = shop.customer()
    ro = shop.repair_order(customer)
    shop.move(ro, "in_repair")
    dispatch()
    states = {m.stage: (m.state, m.suppressed_reason) for m in shop.messages()}
    assert states["checked_in"][0] == "superseded"
    assert "superseded by in_repair" in (states["checked_in"][1] or "")
    assert [m.body for m in sent_to(sandbox)] and len(sent_to(sandbox)) == 1


def test_500_500_201_sends_one_message(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    customer, _ = shop.customer()
    shop.repair_order(customer)
    sandbox.inject("500_before", count=2)
    first = dispatch()
    assert first.retried == 1
    (message,) = shop.messages()
    assert message.state == "pending" and message.attempt == 1 and message.not_before > clock()
    assert dispatch().claimed == 0  # the retry waits for its time, not a sleeping worker
    clock.advance(minutes=2)
    assert dispatch().retried == 1
    clock.advance(minutes=5)
    assert dispatch().sent == 1
    assert len(sent_to(sandbox)) == 1
    assert len(sandbox.state.create_requests) == 3
    wait_for_states(shop, sandbox, "delivered")


def test_accepted_then_500_is_reconciled_not_resent(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    customer, _ = shop.customer()
    shop.repair_order(customer)
    sandbox.inject("500_after")
    assert dispatch().retried == 1
    clock.advance(minutes=2)
    result = dispatch()
    assert result.adopted == 1 and result.sent == 0
    (held,) = sent_to(sandbox)
    (message,) = shop.messages()
    assert message.provider_sid == held.sid
    assert len(sandbox.state.create_requests) == 1


def test_429_honours_retry_after(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    customer, _ = shop.customer()
    shop.repair_order(customer)
    sandbox.inject("429", retry_after=90)
    dispatch()
    (message,) = shop.messages()
    assert round((message.not_before - clock()).total_seconds()) == 90
    clock.advance(seconds=91)
    assert dispatch().sent == 1


def test_21610_revokes_consent_and_is_never_retried(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    customer, phone_id = shop.customer()
    ro = shop.repair_order(customer)
    sandbox.state.set_opted_out("+14155550142", True)
    assert dispatch().failed == 1
    shop.move(ro, "in_repair")
    clock.advance(hours=1)
    assert dispatch().suppressed == 1
    first, second = shop.messages()
    assert (first.state, first.error_code) == ("failed", 21610)
    # Twilio's block is recorded per sender: nothing more is tried until the customer
    # texts START, and staff read why.
    assert second.state == "suppressed" and second.suppressed_reason == (
        "Twilio blocks texts from +14155550100 to this phone until the customer texts START"
    )
    with shop.database.sessions() as session:
        rows = session.execute(
            select(Consent.purpose, Consent.source, Consent.detail).where(
                Consent.phone_id == phone_id
            )
        ).all()
    assert sorted(rows) == [
        ("carrier", "twilio:21610", "+14155550100"),
        ("marketing", "twilio:21610", None),
        ("status", "twilio:21610", None),
    ]
    assert len(sandbox.state.create_requests) == 1


def test_landline_marks_the_phone_not_textable(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, phone_id = shop.customer("+14155550177")
    shop.repair_order(customer)
    assert dispatch().failed == 1
    (message,) = shop.messages()
    assert message.error_code == 21614
    with shop.database.sessions() as session:
        phone = session.get(Phone, phone_id)
        assert (
            phone is not None
            and not phone.textable
            and "21614" in (phone.not_textable_reason or "")
        )


def test_bad_credentials_stop_all_sending_until_twilio_accepts_them_again(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    for n, number in enumerate(("+14155550142", "+14155550143")):
        customer, _ = shop.customer(number)
        shop.repair_order(customer, number=f"R{n}")
    sandbox.inject("error", code=20003, status=401, count=5)
    result = dispatch(concurrency=1)
    assert result.stopped and result.sent == 0
    assert {m.state for m in shop.messages()} == {"pending"}
    sandbox.reset()
    # Within the minute nobody asks Twilio again; the account stays stopped.
    assert dispatch().stopped and dispatch().claimed == 0

    # A minute on, one worker re-checks: the token is still wrong, so still stopped.
    clock.advance(minutes=2)
    wrong = TwilioGateway(DEMO_ACCOUNT_SID, "not-the-token", api_url=sandbox.url)
    assert dispatch(gateway=wrong).stopped
    with shop.database.transaction() as session:
        alert = session.get(Alert, "twilio:auth")
        assert alert is not None and alert.resolved_at is None
        assert alert.last_checked_at is not None
    assert sent_to(sandbox) == []

    # The operator fixes TWILIO_AUTH_TOKEN: the next check resolves the alert, sending resumes.
    clock.advance(minutes=2)
    resumed = dispatch()
    assert resumed.stopped is None and resumed.sent == 2
    with shop.database.transaction() as session:
        alert = session.get(Alert, "twilio:auth")
        assert alert is not None and alert.resolved_at is not None


def test_shadow_mode_records_what_would_be_sent(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(shadow=True)
    customer, _ = shop.customer()
    shop.repair_order(customer)
    assert dispatch().suppressed == 1
    (message,) = shop.messages()
    assert message.state == "suppressed" and message.suppressed_reason == "shadow mode: not sent"
    assert message.body and "Sam" in message.body
    assert sent_to(sandbox) == []


def test_a_configuration_changed_between_claims_is_the_one_the_next_claim_uses(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    # A claim reads each rooftop's configuration by a digest of what is stored (PostgreSQL
    # keeps the validated one per digest in the process): a change is seen at once.
    customer, _ = shop.customer()
    ro = shop.repair_order(customer)
    assert dispatch().sent == 1
    shop.configure(shadow=True)
    shop.move(ro, "in_repair")
    assert dispatch().suppressed == 1
    shop.configure(shadow=False)
    shop.move(ro, "ready_for_pickup")
    assert dispatch().sent == 1
    assert [m.suppressed_reason for m in shop.messages()] == [
        None,
        "shadow mode: not sent",
        None,
    ]


def test_consent_revoked_mid_queue(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    kept, _ = shop.customer("+14155550142")
    stopped, stopped_phone = shop.customer("+14155550143", first_name="Alex")
    shop.repair_order(kept, number="R1")
    shop.repair_order(stopped, number="R2")
    with shop.database.transaction() as session:  # the customer texts STOP before the worker runs
        for purpose in ("status", "marketing"):
            session.add(
                Consent(
                    group_id=shop.group_id,
                    phone_id=stopped_phone,
                    customer_id=stopped,
                    channel="sms",
                    purpose=purpose,
                    action="revoked",
                    source="keyword",
                )
            )
    result = dispatch()
    assert (result.sent, result.suppressed) == (1, 1)
    assert [m.to for m in sent_to(sandbox)] == ["+14155550142"]
    suppressed = next(m for m in shop.messages() if m.customer_id == stopped)
    assert suppressed.suppressed_reason == "consent: status on sms revoked (keyword)"


def test_daily_cap_holds_automatic_texts_until_the_next_morning(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(daily_cap=1)
    customer, _ = shop.customer()
    ro = shop.repair_order(customer)
    dispatch()
    shop.move(ro, "in_repair")
    result = dispatch()
    assert result.deferred + result.expired == 1 and result.sent == 0
    held = shop.messages()[-1]
    # Held for tomorrow morning, or expired when it would be stale by then (time of day decides).
    assert held.state in ("pending", "expired") and "daily cap 1 reached" in (
        held.suppressed_reason or ""
    )
    shop.move(ro, "ready_for_pickup")  # the customer must act on this one: never capped
    assert dispatch().sent == 1
    assert len(sent_to(sandbox)) == 2


def test_late_notice_is_not_held_by_the_daily_cap(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    shop.configure(daily_cap=1)
    customer, phone = shop.customer()
    ro = shop.repair_order(customer)
    assert dispatch().sent == 1  # the welcome uses up today's cap
    with shop.database.transaction() as session:
        enqueue(
            session,
            MessageRequest(
                rooftop_id=shop.rooftop_id,
                customer_id=customer,
                phone_id=phone,
                repair_order_id=ro,
                kind="watchdog",
                purpose="status",
                dedupe_key=f"ro:{ro}:late:test",
                body="Your car is running a little late; we will text the new time.",
                to_address="+14155550142",
            ),
        )
    assert dispatch().sent == 1
    assert len(sent_to(sandbox)) == 2


def test_expired_message_is_not_sent(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any], clock: Clock
) -> None:
    customer, _ = shop.customer()
    shop.repair_order(customer)
    clock.advance(hours=19)
    assert dispatch().expired == 1
    assert shop.messages()[0].state == "expired" and sent_to(sandbox) == []
