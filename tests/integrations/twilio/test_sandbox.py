"""The sandbox speaks like Twilio to Pitwall: signed callbacks, inbound texts and calls."""

from __future__ import annotations

import httpx
import pytest
from twilio.rest import Client

from integrations.twilio.base import (
    ErrorKind,
    OutgoingMessage,
    SendError,
    callback_error_marks_phone,
)
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from integrations.twilio.webhooks import SIGNATURE_HEADER, is_valid_signature

from .conftest import ACCOUNT_SID, AUTH_TOKEN, ROOFTOP, Received, WebhookReceiver

CUSTOMER = "+14155550142"


def status_url(receiver: WebhookReceiver) -> str:
    return f"{receiver.url}/webhooks/twilio/status?rooftop=bayview-toyota"


def signed(hook: Received, base_url: str) -> bool:
    return is_valid_signature(
        AUTH_TOKEN, base_url + hook.path, hook.pairs, hook.headers.get(SIGNATURE_HEADER)
    )


def callbacks(hooks: list[Received]) -> list[Received]:
    return [h for h in hooks if h.path.startswith("/webhooks/twilio/status")]


def send_with_callback(gateway: TwilioGateway, receiver: WebhookReceiver) -> str:
    msg = OutgoingMessage(
        to=CUSTOMER, from_=ROOFTOP, body="Checked in", status_callback=status_url(receiver)
    )
    return gateway.send(msg).sid


def test_signed_status_callbacks_sent_then_delivered(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    sid = send_with_callback(gateway, receiver)
    hooks = callbacks(receiver.wait_for(lambda got: len(callbacks(got)) >= 2))
    assert [h.form["MessageStatus"] for h in hooks] == ["sent", "delivered"]
    for hook in hooks:
        assert signed(hook, receiver.url)
        assert hook.path.endswith("?rooftop=bayview-toyota")
        form = hook.form
        assert (form["MessageSid"], form["SmsSid"], form["To"], form["From"]) == (
            sid,
            sid,
            CUSTOMER,
            ROOFTOP,
        )
        assert (form["AccountSid"], form["ApiVersion"]) == (ACCOUNT_SID, "2010-04-01")
        assert "ErrorCode" not in form
    assert gateway.fetch(sid).status == "delivered"


def test_duplicate_callbacks(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    sandbox.inject("duplicate")
    send_with_callback(gateway, receiver)
    hooks = callbacks(receiver.wait_for(lambda got: len(callbacks(got)) >= 4))
    assert [h.form["MessageStatus"] for h in hooks] == ["sent", "sent", "delivered", "delivered"]


def test_out_of_order_callbacks_keep_the_final_status(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    sandbox.inject("out_of_order")
    sid = send_with_callback(gateway, receiver)
    hooks = callbacks(receiver.wait_for(lambda got: len(callbacks(got)) >= 2))
    assert [h.form["MessageStatus"] for h in hooks] == ["delivered", "sent"]
    assert sandbox.wait_for_callbacks()
    assert gateway.fetch(sid).status == "delivered"


def test_failed_delivery_callback_carries_the_error_code(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    sandbox.inject("fail", error_code=30006)
    send_with_callback(gateway, receiver)
    hooks = callbacks(receiver.wait_for(lambda got: len(callbacks(got)) >= 2))
    final = hooks[-1].form
    assert (final["MessageStatus"], final["ErrorCode"]) == ("undelivered", "30006")
    assert callback_error_marks_phone(final["ErrorCode"])
    assert signed(hooks[-1], receiver.url)


def test_faults_over_http(sandbox: SandboxServer, gateway: TwilioGateway) -> None:
    response = httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"faults": [{"kind": "429", "retry_after": 2, "count": 2}, {"kind": "500_after"}]},
    )
    assert response.json() == {"faults_pending": 3}
    bad = httpx.post(f"{sandbox.url}/_sandbox/faults", json={"kind": "meteor"})
    assert bad.status_code == 400
    kinds = []
    for _ in range(4):
        try:
            gateway.send(OutgoingMessage(to=CUSTOMER, from_=ROOFTOP, body="hi"))
            kinds.append("ok")
        except SendError as error:
            kinds.append(error.kind.value)
    assert kinds == ["rate_limited", "rate_limited", "ambiguous", "ok"]
    dump = httpx.get(f"{sandbox.url}/_sandbox/messages").json()
    assert len(dump["messages"]) == 2  # the 500_after one really exists
    assert [r["outcome"] for r in dump["create_requests"]] == ["429", "429", "500_after", "ok"]
    assert httpx.post(f"{sandbox.url}/_sandbox/reset").status_code == 200
    assert httpx.get(f"{sandbox.url}/_sandbox/messages").json()["messages"] == []


def test_inbound_reply_is_signed_and_twiml_answer_recorded(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    gateway.send(OutgoingMessage(to=CUSTOMER, from_=ROOFTOP, body="Ready for pickup"))
    receiver.replies["/webhooks/twilio/messages"] = (
        200,
        "<?xml version='1.0' encoding='UTF-8'?><Response><Message>Thanks &amp; see you"
        "</Message></Response>",
    )
    answer = httpx.post(
        f"{sandbox.url}/_sandbox/inbound", json={"from": CUSTOMER, "body": "On my way"}
    ).json()
    (hook,) = receiver.wait_for(lambda got: len(got) >= 1)
    assert signed(hook, receiver.url)
    assert hook.headers.get("I-Twilio-Idempotency-Token")
    form = hook.form
    assert form["MessageSid"] == answer["message_sid"] and form["MessageSid"].startswith("SM")
    assert (form["From"], form["To"], form["Body"]) == (CUSTOMER, ROOFTOP, "On my way")
    assert (form["NumMedia"], form["SmsStatus"], form["AccountSid"]) == (
        "0",
        "received",
        ACCOUNT_SID,
    )
    assert answer["replies"] == ["Thanks & see you"]
    thread = httpx.get(f"{sandbox.url}/_sandbox/phone.json").json()["threads"][CUSTOMER]
    assert [(e["kind"], e["text"]) for e in thread] == [
        ("outbound", "Ready for pickup"),
        ("inbound", "On my way"),
        ("twiml", "Thanks & see you"),
    ]


def test_whatsapp_inbound_and_retried_webhook(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    answer = httpx.post(
        f"{sandbox.url}/_sandbox/inbound",
        json={
            "from": CUSTOMER,
            "to": ROOFTOP,
            "body": "Is it ready?",
            "channel": "whatsapp",
            "profile_name": "Sam",
            "repeat": 2,
        },
    ).json()
    hooks = receiver.wait_for(lambda got: len(got) >= 2)
    assert all(signed(h, receiver.url) for h in hooks)
    assert hooks[0].form == hooks[1].form  # a Twilio retry repeats the MessageSid
    form = hooks[0].form
    assert (form["From"], form["To"]) == ("whatsapp:" + CUSTOMER, "whatsapp:" + ROOFTOP)
    assert (form["ProfileName"], form["WaId"]) == ("Sam", CUSTOMER[1:])
    assert len(answer["attempts"]) == 2


def test_stop_on_a_plain_long_code_is_answered_and_blocked_by_twilio_without_saying_so(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    receiver.replies["/webhooks/twilio/messages"] = (
        200,
        "<Response><Message>Pitwall says: unsubscribed</Message></Response>",
    )
    httpx.post(f"{sandbox.url}/_sandbox/inbound", json={"from": CUSTOMER, "body": " stop "})
    assert "OptOutType" not in receiver.wait_for(lambda got: len(got) >= 1)[0].form
    thread = sandbox.state.snapshot_threads()[CUSTOMER]
    assert [entry.kind for entry in thread] == ["inbound", "carrier", "note"]
    assert "successfully been unsubscribed" in thread[1].text
    # Twilio refuses the app's own reply to a phone it has just blocked.
    assert thread[2].text.startswith("Twilio refused Pitwall's reply (21610)")
    with pytest.raises(SendError) as caught:
        gateway.send(OutgoingMessage(to=CUSTOMER, from_=ROOFTOP, body="Ready"))
    assert caught.value.kind is ErrorKind.UNSUBSCRIBED and caught.value.code == 21610
    # The block is per sender (here the number's Messaging Service), not per account.
    assert sandbox.state.is_opted_out(CUSTOMER, sender="MG" + "1" * 32)
    assert not sandbox.state.is_opted_out(CUSTOMER, sender="+14155550999")
    httpx.post(f"{sandbox.url}/_sandbox/inbound", json={"from": CUSTOMER, "body": "START"})
    assert "re-subscribed" in sandbox.state.snapshot_threads()[CUSTOMER][-2].text
    assert gateway.send(OutgoingMessage(to=CUSTOMER, from_=ROOFTOP, body="Ready")).sid


def test_a_bare_yes_is_only_a_keyword_to_a_blocked_phone(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/inbound", json={"from": CUSTOMER, "body": "YES"})
    receiver.wait_for(lambda got: len(got) >= 1)
    assert [e.kind for e in sandbox.state.snapshot_threads()[CUSTOMER]] == ["inbound"]
    sandbox.state.set_opted_out(CUSTOMER, True, sender="MG" + "1" * 32)
    httpx.post(f"{sandbox.url}/_sandbox/inbound", json={"from": CUSTOMER, "body": "yes"})
    assert sandbox.state.snapshot_threads()[CUSTOMER][-1].kind == "carrier"
    assert not sandbox.state.is_opted_out(CUSTOMER, sender="MG" + "1" * 32)


def test_advanced_opt_out_says_which_keyword_in_opt_out_type(receiver: WebhookReceiver) -> None:
    config = SandboxConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        pitwall_public_url=receiver.url,
        callback_delay_s=0.0,
        phone_numbers=(ROOFTOP,),
        advanced_opt_out=frozenset({ROOFTOP}),
    )
    with SandboxServer(config) as advanced:
        for body, kind in (("STOP", "STOP"), ("help", "HELP"), ("Unstop", "START")):
            httpx.post(f"{advanced.url}/_sandbox/inbound", json={"from": CUSTOMER, "body": body})
            assert receiver.wait_for(lambda got: len(got) >= 1)[-1].form["OptOutType"] == kind
            receiver.clear()


def test_call_not_answered_posts_dial_status_to_the_action(
    sandbox: SandboxServer, receiver: WebhookReceiver
) -> None:
    receiver.replies["/webhooks/twilio/voice"] = (
        200,
        '<Response><Say voice="alice">Your car is in repair.</Say>'
        '<Dial action="/webhooks/twilio/voice/dial-status?rooftop=1" timeout="20">'
        "+14155550199</Dial></Response>",
    )
    call = httpx.post(
        f"{sandbox.url}/_sandbox/call",
        json={"from": CUSTOMER, "to": ROOFTOP, "dial_status": "no-answer"},
    ).json()
    assert call["call_sid"].startswith("CA") and len(call["call_sid"]) == 34
    assert call["says"] == ["Your car is in repair."]
    assert call["dial"]["number"] == "+14155550199"
    voice, dial = receiver.wait_for(lambda got: len(got) >= 2)
    assert voice.path == "/webhooks/twilio/voice" and signed(voice, receiver.url)
    assert (voice.form["CallStatus"], voice.form["Direction"], voice.form["Caller"]) == (
        "ringing",
        "inbound",
        CUSTOMER,
    )
    assert dial.path == "/webhooks/twilio/voice/dial-status?rooftop=1"
    assert signed(dial, receiver.url)
    assert dial.form["DialCallStatus"] == "no-answer"
    assert dial.form["CallSid"] == call["call_sid"]


def test_phone_view_escapes_everything(
    sandbox: SandboxServer, gateway: TwilioGateway, receiver: WebhookReceiver
) -> None:
    gateway.send(OutgoingMessage(to=CUSTOMER, from_=ROOFTOP, body="<script>alert(1)</script>"))
    page = httpx.get(sandbox.url + "/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "http://" not in page.text.replace(receiver.url, "")  # no CDN, nothing external
    reply = httpx.post(
        sandbox.url + "/_sandbox/phone/reply",
        data={"from": CUSTOMER, "body": "thanks"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert receiver.wait_for(lambda got: len(got) >= 1)[0].form["Body"] == "thanks"


def test_phone_numbers_can_be_listed_and_pointed_at_pitwall(sandbox: SandboxServer) -> None:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = sandbox.url
    (number,) = client.incoming_phone_numbers.list(limit=20)
    assert number.phone_number == ROOFTOP and number.sid.startswith("PN")
    updated = client.incoming_phone_numbers(number.sid).update(
        sms_url="https://pw.example.com/webhooks/twilio/messages",
        voice_url="https://pw.example.com/webhooks/twilio/voice",
    )
    assert updated.sms_url == "https://pw.example.com/webhooks/twilio/messages"
    assert client.incoming_phone_numbers.list()[0].voice_url.endswith("/voice")


def test_whatsapp_free_text_outside_the_window_fails_with_63016(receiver: WebhookReceiver) -> None:
    config = SandboxConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        pitwall_public_url=receiver.url,
        callback_delay_s=0.0,
        whatsapp_window=True,
    )
    wa_customer, wa_rooftop = "whatsapp:" + CUSTOMER, "whatsapp:" + ROOFTOP
    with SandboxServer(config) as strict:
        gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, api_url=strict.url)
        closed = gateway.send(OutgoingMessage(to=wa_customer, from_=wa_rooftop, body="Ready"))
        template = gateway.send(
            OutgoingMessage(to=wa_customer, from_=wa_rooftop, content_sid="HX" + "a" * 32)
        )
        httpx.post(
            f"{strict.url}/_sandbox/inbound",
            json={"from": CUSTOMER, "to": ROOFTOP, "body": "hi", "channel": "whatsapp"},
        )
        opened = gateway.send(OutgoingMessage(to=wa_customer, from_=wa_rooftop, body="Ready"))
        assert strict.wait_for_callbacks()
        assert gateway.fetch(closed.sid).status == "failed"
        assert strict.state.get_message(closed.sid).error_code == 63016  # type: ignore[union-attr]
        assert gateway.fetch(template.sid).status == "delivered"
        assert gateway.fetch(opened.sid).status == "delivered"
        gateway.close()
