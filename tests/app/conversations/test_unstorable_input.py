"""Characters the database cannot store never turn into a 500 (found by schemathesis)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import create_api_token
from app.conversations.models import InboundMessage
from app.dealers.models import DealerGroup
from tests.app.conversations.conftest import Twilio, customer_on, repair_order

SAM = "+14155550142"


def test_a_nul_in_a_signed_text_is_dropped_and_the_text_kept(
    twilio: Twilio, session: Session
) -> None:
    sam = customer_on(session, SAM, first="Sam", last="Lee")
    repair_order(session, sam, ro_number="R4", stage="ready_for_pickup")
    session.commit()
    answer = twilio.text("is it\x00 ready?", from_=SAM)
    assert answer.status_code == 200
    stored = session.scalars(select(InboundMessage.body)).one()
    assert stored == "is it ready?"


def test_a_nul_in_a_query_is_a_422_not_a_500(twilio: Twilio, session: Session) -> None:
    group = session.scalars(select(DealerGroup)).one()
    token = create_api_token(session, group_id=group.id, name="t", role="director")
    session.commit()
    response = twilio.client.get(
        "/api/v1/inbox",
        params={"rooftop": "bayview\x00toyota"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code in (404, 422)
    assert response.status_code != 500
