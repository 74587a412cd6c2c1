"""STOP, START and HELP, as keywords or in the customer's own words, answered once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations import intents
from app.conversations.handoff import needs_reply
from app.conversations.turn import Turn
from app.customers.models import Consent
from app.customers.service import record_consent, revoke_all

# Below this probability an opt-out in the customer's own words is confirmed with a way back.
UNSURE_OPT_OUT = 0.6


def consent_reply(turn: Turn, name: str) -> str | None:
    """Change consent on the channel the text came by, and confirm it once.

    A natural-language opt-out ("stop texting me", "no me manden más mensajes") revokes
    every automated text on the channel, as the FCC's 2025 revocation rule reads; the one
    confirmation text it allows is Pitwall's.
    """
    phone, channel = turn.contact.phone, turn.row.channel
    if name == intents.OPT_OUT:
        revoke_all(turn.session, phone=phone, channel=channel, source=_source(turn))
        # Words the model was not sure of are still honoured (the rule treats an unclear
        # revocation as one); the one confirmation text says how to undo it.
        unsure = not turn.intent.by_keyword and turn.intent.confidence < UNSURE_OPT_OUT
        reply = turn.say("stop_confirm_check" if unsure else "stop_confirm")
        if unsure:
            # Whatever else the text asked for still reaches a person.
            needs_reply(turn, note="texts stopped (read as a possible opt-out): ")
    elif name == intents.OPT_IN:
        for purpose in ("status", "marketing"):
            if purpose == "status" or _marketing_was_granted(
                turn.session, phone_id=phone.id, channel=channel
            ):
                record_consent(
                    turn.session,
                    phone=phone,
                    customer=turn.contact.only_customer,
                    channel=channel,
                    purpose=purpose,
                    action="granted",
                    source=_source(turn),
                    detail=turn.row.body.strip()[:40],
                )
        reply = turn.say("start_confirm")
    else:
        reply = turn.say("help_reply", desk=turn.rooftop.service_desk or "")
    turn.row.reply_kind = name
    # On SMS with Advanced Opt-Out Twilio has answered the keyword itself; a second reply
    # would be one confirmation too many. It never answers words that are not its keywords,
    # and WhatsApp has no carrier-level keywords: then we answer.
    return None if turn.twilio_replied and turn.intent.by_keyword else reply


def _source(turn: Turn) -> str:
    """The ledger's source: a carrier keyword, or the customer's own words."""
    return "keyword" if turn.intent.by_keyword else "reply"


def _marketing_was_granted(session: Session, *, phone_id: int, channel: str) -> bool:
    """START restores marketing only if STOP is what took it away (written consent stands)."""
    rows = session.scalars(
        select(Consent)
        .where(
            Consent.phone_id == phone_id, Consent.channel == channel, Consent.purpose == "marketing"
        )
        .order_by(Consent.id.desc())
    )
    for row in rows:
        if row.source in ("keyword", "reply") and row.action == "revoked":
            continue
        return row.action == "granted"
    return False
