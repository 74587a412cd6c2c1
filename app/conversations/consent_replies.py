"""STOP, START and HELP, as keywords or in the customer's own words, answered once."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations import intents
from app.conversations.handoff import needs_reply
from app.conversations.matching import Contact
from app.conversations.models import InboundMessage
from app.conversations.turn import Turn
from app.customers import carrier
from app.customers.models import Consent
from app.customers.service import record_consent, revoke_all
from app.dealers.models import Rooftop

# Below this probability an opt-out in the customer's own words is confirmed with a way back.
UNSURE_OPT_OUT = 0.6


def consent_reply(turn: Turn, name: str) -> str | None:
    """Change consent on the channel the text came by, and confirm it once.

    A natural-language opt-out ("stop texting me", "no me manden más mensajes") revokes
    every automated text on the channel, as the FCC's 2025 revocation rule reads; the one
    confirmation text it allows is Pitwall's.
    """
    phone, channel = turn.contact.phone, turn.row.channel
    reply: str | None
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
        blocked_by = blocked_at_twilio(turn)
        if blocked_by is not None:
            # Pitwall heard the customer, Twilio did not: it still refuses every text from
            # this sender to this phone, this reply included (21610), until the customer
            # texts START. A person has to tell them; the ledger keeps both states.
            needs_reply(
                turn,
                note=(
                    f"wants texts again, but Twilio blocks texts from {blocked_by} to this "
                    "phone until the customer texts START (one word): please tell them: "
                ),
            )
            reply = None
    else:
        reply = turn.say("help_reply", desk=turn.rooftop.service_desk or "")
    turn.row.reply_kind = name
    # Twilio has answered its own keyword (standard handling or Advanced Opt-Out): a second
    # reply would be one confirmation too many, and after STOP Twilio would refuse it. It
    # never answers words that are not its keywords, nor on WhatsApp: then we answer.
    # Twilio also refuses any reply to a phone it blocks (a STOP Pitwall could not see).
    return None if turn.twilio_replied or blocked_at_twilio(turn) else reply


def twilio_answered(
    session: Session,
    *,
    row: InboundMessage,
    rooftop: Rooftop,
    contact: Contact,
    form: Mapping[str, str],
    opted_out: bool = False,
) -> str | None:
    """The intent Twilio itself acted on for this text (and answered), recorded in the ledger.

    Twilio's block follows its keywords, not Pitwall's reading: after its STOP the ledger
    holds a carrier row "revoked" for the sender, after its START one "granted".
    The phone's latest carrier row for the rooftop's sender is the one the contact lookup
    read (`Contact.carrier_action`): asked again only of a contact the lookup created.
    `opted_out`: Pitwall's own ledger says the phone revoked status texts; it stands in for
    Twilio's state when Pitwall has never recorded one (a STOP from before it did).
    """
    settings = rooftop.settings
    mode = carrier.keyword_mode(settings)
    sender = carrier.sender_key(settings) if row.channel == "sms" else None
    # Only a bare YES depends on the block (it re-subscribes a blocked phone, and is an
    # ordinary answer otherwise): only then is it read.
    blocked = False
    if mode == "standard" and sender is not None and row.body.strip().upper() == "YES":
        state = (
            carrier.carrier_state(session, phone_id=contact.phone.id, sender=sender)
            if contact.is_new
            else carrier.blocked_by(contact.carrier_action)
        )
        blocked = opted_out if state is None else state
    action = carrier.twilio_handled(
        mode,
        channel=row.channel,
        opt_out_type=form.get("OptOutType"),
        body=row.body,
        blocked=blocked,
    )
    if action is None:
        return None
    if action != "help" and sender is not None:
        word = (form.get("OptOutType") or row.body).strip().upper()[:20]
        carrier.record_carrier_state(
            session,
            phone=contact.phone,
            sender=sender,
            blocked=action == "opt_out",
            source=f"twilio:{word}",
        )
    return {"opt_out": intents.OPT_OUT, "opt_in": intents.OPT_IN}.get(action, intents.HELP)


def blocked_at_twilio(turn: Turn) -> str | None:
    """The sender Twilio blocks this phone on (read with the contact), unless this very text
    was Twilio's own keyword: Twilio refuses any reply to it, TwiML included (21610)."""
    if turn.row.channel != "sms" or turn.twilio_replied:
        return None
    if turn.contact.carrier_action != "revoked":
        return None
    return carrier.sender_key(turn.rooftop.settings)


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
