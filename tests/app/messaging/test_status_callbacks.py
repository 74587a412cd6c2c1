"""POST /webhooks/twilio/status: signed, idempotent, forward-only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from app.config import Settings
from app.customers.models import Phone
from app.messaging.jobs import apply_held_statuses
from app.messaging.models import EarlyStatus, OutboundMessage
from app.messaging.service import EARLY_STATUS_KEPT
from integrations.twilio.sandbox import SandboxServer
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.app.messaging.conftest import Shop
from tests.support import ServedApp


def post_status(
    app: ServedApp, settings: Settings, form: dict[str, str], *, forged: bool = False
) -> int:
    url = settings.public_url + "/webhooks/twilio/status"
    signature = compute_signature(settings.twilio_auth_token, url, form)
    if forged:
        signature = compute_signature("not-the-token", url, form)
    response = httpx.post(
        app.url + "/webhooks/twilio/status", data=form, headers={SIGNATURE_HEADER: signature}
    )
    return response.status_code


def sent_message(
    shop: Shop, dispatch: Callable[..., Any], sandbox: SandboxServer, number: str = "+14155550142"
) -> str:
    customer, _ = shop.customer(number)
    shop.repair_order(customer)
    assert dispatch().sent == 1
    assert sandbox.wait_for_callbacks(10)
    sid = shop.messages()[0].provider_sid
    assert sid
    return sid


def test_duplicated_and_reordered_callbacks_end_delivered(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    sandbox.inject("duplicate")
    sandbox.inject("out_of_order")
    for n, number in enumerate(("+14155550142", "+14155550143")):
        customer, _ = shop.customer(number)
        shop.repair_order(customer, number=f"R{n}")
    assert dispatch(concurrency=1).sent == 2
    assert sandbox.wait_for_callbacks(10)
    assert {(m.state, m.provider_status) for m in shop.messages()} == {("delivered", "delivered")}


def test_a_late_sent_never_overwrites_delivered_and_repeats_change_nothing(
    shop: Shop,
    sandbox: SandboxServer,
    dispatch: Callable[..., Any],
    served_app: ServedApp,
    app_settings: Settings,
) -> None:
    sid = sent_message(shop, dispatch, sandbox)
    before = shop.messages()[0]
    assert before.state == "delivered"
    for status in ("sent", "delivered", "queued", "delivered"):
        assert (
            post_status(served_app, app_settings, {"MessageSid": sid, "MessageStatus": status})
            == 200
        )
    after = shop.messages()[0]
    assert (after.state, after.delivered_at, after.updated_at) == (
        "delivered",
        before.delivered_at,
        before.updated_at,
    )
    assert (
        post_status(served_app, app_settings, {"MessageSid": sid, "MessageStatus": "read"}) == 200
    )
    assert shop.messages()[0].state == "read"


def test_forged_callback_is_refused_and_writes_nothing(
    shop: Shop,
    sandbox: SandboxServer,
    dispatch: Callable[..., Any],
    served_app: ServedApp,
    app_settings: Settings,
) -> None:
    sid = sent_message(shop, dispatch, sandbox)
    before = shop.messages()[0]
    for status in ("read", "undelivered"):
        form = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": "30006"}
        assert post_status(served_app, app_settings, form, forged=True) == 403
    after = shop.messages()[0]
    assert (after.state, after.error_code, after.updated_at) == (
        "delivered",
        None,
        before.updated_at,
    )
    assert (
        post_status(served_app, app_settings, {"MessageSid": sid, "MessageStatus": "read"}) == 200
    )
    assert shop.messages()[0].state == "read"  # the same news, signed, is applied


def test_30006_marks_the_phone_not_textable(
    shop: Shop, sandbox: SandboxServer, dispatch: Callable[..., Any]
) -> None:
    customer, phone_id = shop.customer()
    shop.repair_order(customer)
    sandbox.inject("fail", error_code=30006)
    dispatch()
    assert sandbox.wait_for_callbacks(10)
    message = shop.messages()[0]
    assert (message.state, message.error_code) == ("undelivered", 30006)
    with shop.database.sessions() as session:
        phone = session.get(Phone, phone_id)
        assert phone is not None and not phone.textable


def test_unknown_sid_is_acknowledged(
    served_app: ServedApp, app_settings: Settings, shop: Shop
) -> None:
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    assert post_status(served_app, app_settings, form) == 200


def test_callbacks_that_beat_the_recording_of_their_send_are_held_then_applied(
    served_app: ServedApp,
    app_settings: Settings,
    shop: Shop,
    sandbox: SandboxServer,
    dispatch: Callable[..., Any],
) -> None:
    """The worker records a batch's SIDs once the batch is sent; Twilio may report the
    first sends sooner. Such callbacks are kept and applied once the SID is known."""
    early = "SM" + "7" * 32
    for status in ("sent", "delivered"):
        form = {"MessageSid": early, "MessageStatus": status}
        assert post_status(served_app, app_settings, form) == 200
    never = {"MessageSid": "SM" + "8" * 32, "MessageStatus": "delivered"}
    assert post_status(served_app, app_settings, never) == 200
    with shop.database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EarlyStatus)) == 3

    # The batch's recording lands: the row now carries the SID, nothing reported on it yet.
    sent_message(shop, dispatch, sandbox)
    with shop.database.transaction() as session:
        session.execute(
            update(OutboundMessage).values(provider_sid=early, provider_status=None, state="sent")
        )
    assert apply_held_statuses(shop.database) == 2
    message = shop.messages()[0]
    assert (message.state, message.provider_status) == ("delivered", "delivered")
    with shop.database.sessions() as session:
        assert session.scalars(select(EarlyStatus.provider_sid)).all() == [never["MessageSid"]]

    # A callback for a SID never recorded is forgotten after an hour.
    later = datetime.now(UTC) + EARLY_STATUS_KEPT + timedelta(minutes=1)
    assert apply_held_statuses(shop.database, clock=lambda: later) == 0
    with shop.database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EarlyStatus)) == 0


def test_an_error_code_no_column_can_hold_is_kept_as_text_and_the_status_applied(
    served_app: ServedApp, app_settings: Settings, shop: Shop
) -> None:
    """Found by probing: ErrorCode=2**64 answered 500 on SQLite (OverflowError) and 422 on
    PostgreSQL, and the status was lost either way."""
    codes = {"SM" + "1" * 32: str(2**64), "SM" + "2" * 32: "abc", "SM" + "3" * 32: "30003"}
    for sid, code in codes.items():
        form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": code}
        assert post_status(served_app, app_settings, form) == 200, code
    with shop.database.sessions() as session:
        held = {
            row.provider_sid: (row.status, row.error_code, row.error_message)
            for row in session.scalars(select(EarlyStatus))
        }
    assert held == {
        "SM" + "1" * 32: ("undelivered", None, f"ErrorCode {2**64}"),
        "SM" + "2" * 32: ("undelivered", None, "ErrorCode abc"),
        "SM" + "3" * 32: ("undelivered", 30003, None),
    }
