"""Who answers STOP, START and HELP: Twilio on a plain long code, Advanced Opt-Out when it
says so, Pitwall otherwise; and what Pitwall does when Twilio's block and its own ledger
disagree. Every text goes through the signed webhook."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.models import Task
from app.customers.carrier import keyword_mode
from app.customers.models import Consent, Phone
from app.customers.service import revoke_all
from app.messaging.models import OutboundMessage
from app.messaging.policies import consent_verdict
from app.web.timeline import customer_timeline
from tests.app.conversations.conftest import (
    TOYOTA_WHATSAPP,
    Twilio,
    customer_on,
    keyword_handling,
    reply_of,
    rooftop,
)

SAM = "+14155550142"


def ledger(session: Session) -> list[tuple[str, str, str]]:
    session.rollback()  # read what the webhook committed
    rows = [
        (r.purpose, r.action, r.source)
        for r in session.scalars(select(Consent).order_by(Consent.id))
    ]
    session.rollback()  # SQLite: a reading session would keep the next webhook waiting
    return rows


def status_text_verdict(session: Session) -> str | None:
    """Why a status text to Sam would not be sent now (None: it would go)."""
    session.rollback()
    store = rooftop(session)
    phone_id = session.scalar(select(Consent.phone_id).limit(1))
    message = OutboundMessage(
        rooftop_id=store.id, phone_id=phone_id, channel="sms", purpose="status", kind="ready"
    )
    verdict = consent_verdict(session, message=message, rooftop=store.settings)
    session.rollback()
    return None if verdict is None else verdict.reason


def test_help_on_a_plain_long_code_is_twilios_to_answer(twilio: Twilio, session: Session) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    assert reply_of(twilio.text("help", from_=SAM)) is None
    assert ledger(session) == []


def test_start_after_stop_lifts_twilios_block_and_pitwall_stays_silent(
    twilio: Twilio, session: Session
) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    assert reply_of(twilio.text("STOP", from_=SAM)) is None
    assert status_text_verdict(session) is not None
    assert reply_of(twilio.text("Start", from_=SAM)) is None
    assert ledger(session)[-2:] == [
        ("carrier", "granted", "twilio:START"),
        ("status", "granted", "keyword"),
    ]
    assert status_text_verdict(session) is None


def test_a_bare_yes_while_blocked_is_twilios_opt_in_too(twilio: Twilio, session: Session) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    twilio.text("STOP", from_=SAM)
    assert reply_of(twilio.text("yes", from_=SAM)) is None
    assert ("carrier", "granted", "twilio:YES") in ledger(session)
    assert status_text_verdict(session) is None


def test_an_opt_in_twilio_did_not_see_keeps_its_block_and_asks_a_person_to_say_start(
    twilio: Twilio, session: Session
) -> None:
    """Spanish INICIAR restores Pitwall's consent; Twilio still blocks until START."""
    sam_id = customer_on(session, SAM, first="Sam", last="Lee").id
    session.commit()
    twilio.text("STOP", from_=SAM)
    # No reply: Twilio would refuse it (21610). An advisor is asked to tell the customer.
    assert reply_of(twilio.text("INICIAR", from_=SAM)) is None
    assert ledger(session)[-1] == ("status", "granted", "keyword")
    task = session.scalars(select(Task).order_by(Task.id.desc())).first()
    assert task is not None and "Twilio blocks texts from +14155550100" in task.summary
    assert "texts START" in task.summary
    session.rollback()
    assert status_text_verdict(session) == (
        "Twilio blocks texts from +14155550100 to this phone until the customer texts START"
    )
    group_id = rooftop(session).group_id
    staff_see = [
        e.headline for e in customer_timeline(session, group_id=group_id, customer_id=sam_id)
    ]
    session.rollback()
    assert "Twilio blocks texts from +14155550100 until the customer texts START" in staff_see
    twilio.text("START", from_=SAM)
    assert status_text_verdict(session) is None


def test_an_opt_out_in_words_is_pitwalls_to_confirm_on_a_long_code(
    twilio: Twilio, session: Session
) -> None:
    """Twilio blocks only on a one-word keyword: "Stop. Wrong number." is Pitwall's to answer."""
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    answer = reply_of(twilio.text("Stop. Wrong number.", from_=SAM))
    assert answer is not None and "unsubscribed" in answer
    assert [purpose for purpose, _action, _source in ledger(session)] == ["status", "marketing"]


def test_whatsapp_has_no_carrier_keywords_so_pitwall_answers(
    twilio: Twilio, session: Session
) -> None:
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    answer = reply_of(
        twilio.text("STOP", from_="whatsapp:" + SAM, to="whatsapp:" + TOYOTA_WHATSAPP)
    )
    assert answer is not None and "unsubscribed" in answer
    assert all(purpose != "carrier" for purpose, _a, _s in ledger(session))


def test_advanced_opt_out_start_in_any_language_lifts_the_block(
    twilio: Twilio, session: Session
) -> None:
    keyword_handling(session, "advanced")
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    assert reply_of(twilio.text("PARAR", from_=SAM, OptOutType="STOP")) is None
    assert reply_of(twilio.text("REANUDAR", from_=SAM, OptOutType="START")) is None
    assert [row for row in ledger(session) if row[0] == "carrier"] == [
        ("carrier", "revoked", "twilio:STOP"),
        ("carrier", "granted", "twilio:START"),
    ]


def test_a_short_code_sender_has_no_twilio_keyword_handling(
    twilio: Twilio, session: Session
) -> None:
    settings = rooftop(session).settings
    assert keyword_mode(settings) == "standard"
    assert keyword_mode(settings.model_copy(update={"sms_from": "894546"})) == "off"
    assert keyword_mode(settings.model_copy(update={"carrier_keywords": "advanced"})) == "advanced"


def test_a_bare_yes_after_a_stop_from_before_pitwall_kept_twilios_state(
    twilio: Twilio, session: Session
) -> None:
    """No carrier row, but Pitwall's own ledger says STOP: Twilio re-subscribes and answers
    the YES, so Pitwall does not answer it a second time."""
    customer_on(session, SAM, first="Sam", last="Lee")
    session.flush()
    phone = session.scalars(select(Phone).where(Phone.e164 == SAM)).one()
    revoke_all(session, phone=phone, channel="sms", source="keyword")
    session.commit()
    assert reply_of(twilio.text("YES", from_=SAM)) is None
    assert ledger(session)[-2:] == [
        ("carrier", "granted", "twilio:YES"),
        ("status", "granted", "keyword"),
    ]


def test_a_question_from_a_phone_twilio_blocks_goes_to_a_person_not_into_the_block(
    twilio: Twilio, session: Session
) -> None:
    """After INICIAR Pitwall may text again, Twilio may not: an answer would be refused."""
    customer_on(session, SAM, first="Sam", last="Lee")
    session.commit()
    twilio.text("STOP", from_=SAM)
    twilio.text("INICIAR", from_=SAM)
    assert reply_of(twilio.text("is my car ready?", from_=SAM)) is None
    summaries = [t.summary for t in session.scalars(select(Task).order_by(Task.id))]
    session.rollback()
    assert any("answer by phone" in s and "is my car ready?" in s for s in summaries)
    twilio.text("START", from_=SAM)  # Twilio lifts its block: Pitwall answers again
    assert reply_of(twilio.text("is my car ready?", from_=SAM)) is not None
