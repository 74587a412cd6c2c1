"""The advisor inbox, customer timeline and conversation report through the JSON API."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import create_api_token
from app.config import Settings
from app.conversations.models import InboundMessage
from app.dealers.models import DealerGroup
from app.deps import Database
from app.main import create_app
from app.messaging.models import OutboundMessage
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.app.conversations.conftest import (
    PUBLIC_URL,
    Twilio,
    customer_on,
    new_sid,
    repair_order,
    rooftop,
)
from tests.support import ServedApp

SAM = "+14155550142"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_inbox_reply_take_and_done(
    twilio: Twilio, client: TestClient, api_token: str, session: Session
) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    twilio.text("Do you have a loaner?", from_=f"whatsapp:{SAM}", to="whatsapp:+14155550101")
    inbox = client.get("/api/v1/inbox?rooftop=bayview-toyota", headers=auth(api_token)).json()
    [task] = inbox["tasks"]
    assert task["kind"] == "needs_reply" and task["customer_name"] == "Sam Lee"
    assert task["waiting_seconds"] >= 0 and task["last_message"] == "Do you have a loaner?"

    taken = client.post(f"/api/v1/inbox/{task['id']}/take", headers=auth(api_token)).json()
    assert taken["taken_at"] is not None
    body = {"body": "Yes, one is waiting for you.", "request_id": "r-1"}
    first = client.post(f"/api/v1/inbox/{task['id']}/reply", json=body, headers=auth(api_token))
    again = client.post(f"/api/v1/inbox/{task['id']}/reply", json=body, headers=auth(api_token))
    assert first.status_code == 200 and first.json() == again.json()
    assert first.json()["channel"] == "whatsapp" and first.json()["task_state"] == "done"
    [message] = session.scalars(select(OutboundMessage)).all()
    assert (message.kind, message.purpose, message.to_address) == ("reply", "conversational", SAM)
    session.rollback()  # SQLite: end the read before the app writes again

    done = client.post(f"/api/v1/inbox/{task['id']}/done", headers=auth(api_token)).json()
    assert done["state"] == "done"
    assert (
        client.get("/api/v1/inbox?rooftop=bayview-toyota", headers=auth(api_token)).json()["tasks"]
        == []
    )


def test_api_is_scoped_and_needs_a_token(
    client: TestClient, database: Database, twilio: Twilio
) -> None:
    assert client.get("/api/v1/inbox?rooftop=bayview-toyota").status_code == 401
    twilio.text("hello there", from_=SAM)
    with database.transaction() as session:
        group = session.scalar(select(DealerGroup))
        assert group is not None
        ford_only = create_api_token(
            session,
            group_id=group.id,
            name="ford",
            role="advisor",
            rooftops=[rooftop(session, "bayview-ford")],
        )
        customer_id = session.scalars(select(InboundMessage.customer_id)).one()
    assert (
        client.get("/api/v1/inbox?rooftop=bayview-toyota", headers=auth(ford_only)).status_code
        == 404
    )
    assert client.get("/api/v1/inbox?rooftop=nowhere", headers=auth(ford_only)).status_code == 404
    assert client.post("/api/v1/inbox/1/done", headers=auth(ford_only)).status_code == 404
    assert (
        client.get(f"/api/v1/customers/{customer_id}/timeline", headers=auth(ford_only)).status_code
        == 404
    )


def test_timeline_shows_both_directions_and_consent_newest_first(
    twilio: Twilio, client: TestClient, api_token: str, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R1", stage="ready_for_pickup")
    session.commit()
    twilio.text("is it ready?", from_=SAM)
    twilio.text("STOP", from_=SAM)
    items = client.get(f"/api/v1/customers/{sam.id}/timeline", headers=auth(api_token)).json()[
        "items"
    ]
    kinds = [(i["type"], i.get("direction"), i.get("action")) for i in items]
    assert ("message", "in", None) in kinds and ("message", "out", None) in kinds
    assert ("consent", None, "revoked") in kinds
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)


def test_report_counts_text_and_voice_answers_and_deflected_calls(
    twilio: Twilio, client: TestClient, api_token: str, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R1", stage="in_repair")
    session.commit()
    twilio.text("when will it be done?", from_=SAM)
    sid = new_sid("CA")
    twilio.call(from_=SAM, sid=sid)
    twilio.post("/webhooks/twilio/voice?step=menu", {"CallSid": sid})
    missed = new_sid("CA")
    twilio.call(from_="+14155550177", sid=missed)
    twilio.post("/webhooks/twilio/voice/dial-status", {"CallSid": missed, "DialCallStatus": "busy"})
    report = client.get(
        "/api/v1/reports/conversations?rooftop=bayview-toyota&since=2026-11-01",
        headers=auth(api_token),
    ).json()
    assert report["status_calls_deflected"] == 1
    [day] = report["days"]
    assert day["date"] == "2026-11-23"
    assert (day["status_answered_text"], day["status_answered_voice"]) == (1, 1)
    assert (day["calls"], day["calls_forwarded"], day["calls_missed"], day["textbacks_queued"]) == (
        2,
        1,
        1,
        1,
    )
    assert report["replies_waiting"] == 0


def test_signature_for_the_public_url_validates_over_real_http(
    database: Database, conversation_settings: Settings, client: TestClient
) -> None:
    """Served on 127.0.0.1:<port>, signed for https://pitwall.example.com: accepted."""
    app = create_app(conversation_settings, database=database)
    form = {"MessageSid": new_sid(), "From": SAM, "To": "+14155550100", "Body": "HELP"}
    path = "/webhooks/twilio/messages"
    with ServedApp(app) as served:
        signed = compute_signature(conversation_settings.twilio_auth_token, PUBLIC_URL + path, form)
        ok = httpx.post(served.url + path, data=form, headers={SIGNATURE_HEADER: signed})
        local = compute_signature(conversation_settings.twilio_auth_token, served.url + path, form)
        refused = httpx.post(
            served.url + path,
            data={**form, "MessageSid": new_sid()},
            headers={SIGNATURE_HEADER: local},
        )
    # HELP on a plain long code is Twilio's to answer: accepted, and no second answer.
    assert ok.status_code == 200 and "<Response />" in ok.text
    assert refused.status_code == 403
