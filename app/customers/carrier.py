"""Twilio's own opt-out handling: who answers STOP, START and HELP, and whom Twilio blocks.

What Twilio does (facts/twilio.md, "Opt-out keywords" [V]: Twilio support articles
223134027 and 223181748, the Advanced Opt-Out docs):

- ``standard``: on a long code or toll-free number (and a Messaging Service without
  Advanced Opt-Out) Twilio answers the single-word keywords itself, blocks every later
  message from that sender to that phone after STOP (error 21610, replies included), and
  still passes the text on, with no ``OptOutType`` field.
- ``advanced``: a Messaging Service with Advanced Opt-Out answers the keywords its owner
  configured (other languages too) and says which in ``OptOutType`` (STOP, START, HELP).
- ``off``: Twilio's keyword handling turned off for the account by Twilio support, or a
  short code (no default handling): Pitwall answers every keyword itself.

The block is per sender: a number, or a Messaging Service for all its numbers. Pitwall
keeps the carrier's state in the consent ledger as rows of purpose ``carrier`` whose
detail is the sender, apart from the customer's own consent, so the two can disagree and
Pitwall can see it: a customer who opted back in with "reanudar" is still blocked at
Twilio until they text START.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import RooftopConfig
from app.customers.models import Consent, Phone

CARRIER = "carrier"  # consent-ledger purpose of the rows that mirror Twilio's block

KeywordMode = Literal["standard", "advanced", "off"]
CarrierAction = Literal["opt_out", "opt_in", "help"]

# Twilio's default keywords, matched on the whole message, case-insensitively [V].
TWILIO_OPT_OUT = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
TWILIO_OPT_IN = frozenset({"START", "YES", "UNSTOP"})
TWILIO_HELP = frozenset({"HELP", "INFO"})
_OPT_OUT_TYPES: dict[str, CarrierAction] = {"STOP": "opt_out", "START": "opt_in", "HELP": "help"}


def keyword_mode(rooftop: RooftopConfig) -> KeywordMode:
    """The rooftop's ``carrier_keywords`` setting, or what its sender implies.

    Twilio's API does not say whether a Messaging Service has Advanced Opt-Out on, so a
    service defaults to ``standard`` (Twilio's default keywords, which a service without
    Advanced Opt-Out also answers) and an ``OptOutType`` on an inbound text always wins.
    A short code (not E.164) has no default handling.
    """
    if rooftop.carrier_keywords is not None:
        return rooftop.carrier_keywords
    if (
        not rooftop.messaging_service_sid
        and rooftop.sms_from
        and not rooftop.sms_from.startswith("+")
    ):
        return "off"
    return "standard"


def sender_key(rooftop: RooftopConfig) -> str | None:
    """What Twilio's block is keyed by for this rooftop's SMS: its service, else its number."""
    return rooftop.messaging_service_sid or rooftop.sms_from


def twilio_handled(
    mode: KeywordMode, *, channel: str, opt_out_type: str | None, body: str, blocked: bool
) -> CarrierAction | None:
    """What Twilio itself already did with this inbound text (and answered), if anything.

    A bare YES opts a blocked phone back in at Twilio; to a phone that is not blocked it is
    an ordinary reply (an approval, say) that Twilio leaves alone [I: Twilio documents YES
    only as an opt-in keyword].
    """
    if opt_out_type:
        return _OPT_OUT_TYPES.get(opt_out_type.strip().upper())
    if channel != "sms" or mode != "standard":
        return None
    word = body.strip().upper()
    if word in TWILIO_OPT_OUT:
        return "opt_out"
    if word in TWILIO_HELP:
        return "help"
    if word in TWILIO_OPT_IN and (word != "YES" or blocked):
        return "opt_in"
    return None


def carrier_blocked(session: Session, *, phone_id: int, sender: str | None) -> bool:
    """Whether Twilio blocks SMS from ``sender`` to this phone, as far as Pitwall has heard."""
    return carrier_state(session, phone_id=phone_id, sender=sender) is True


def carrier_state(session: Session, *, phone_id: int, sender: str | None) -> bool | None:
    """Blocked (True), not blocked (False), or never heard of (None: no carrier row yet, e.g.
    a STOP from before Pitwall kept Twilio's state)."""
    if sender is None:
        return None
    action = session.scalar(
        select(Consent.action)
        .where(
            Consent.phone_id == phone_id,
            Consent.channel == "sms",
            Consent.purpose == CARRIER,
            Consent.detail == sender,
        )
        .order_by(Consent.id.desc())
        .limit(1)
    )
    return blocked_by(action)


def blocked_by(action: str | None) -> bool | None:
    """What a carrier row's action says: blocked (True), not (False), no row (None)."""
    return None if action is None else action == "revoked"


def record_carrier_state(
    session: Session, *, phone: Phone, sender: str | None, blocked: bool, source: str
) -> Consent | None:
    """Append Twilio's block (or its lifting) for ``sender`` -> this phone to the ledger."""
    if sender is None:
        return None
    row = Consent(
        group_id=phone.group_id,
        phone_id=phone.id,
        customer_id=None,
        channel="sms",
        purpose=CARRIER,
        action="revoked" if blocked else "granted",
        source=source[:40],
        detail=sender,
    )
    session.add(row)
    return row
