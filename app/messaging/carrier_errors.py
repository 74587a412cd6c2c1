"""What a carrier's delivery error means for the next text (Twilio's 300xx callback codes).

- 30003, handset unreachable (off, out of coverage): temporary. Twilio's error page says
  to retry; the text goes again later, within its validity, and the phone stays textable.
- 30005 unknown destination, 30006 landline: the number cannot take texts (the caller
  marks the phone; see integrations/twilio/base.callback_error_marks_phone).
- 30007 carrier filtering, 30034 unregistered A2P 10DLC number: nothing the customer can
  change; an operator alert names the sending number and what to do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.messaging.models import OutboundMessage
from app.ops.alerts import open_alert

UNREACHABLE = 30003
# Tries after the first send for a handset that is off: 30 minutes, then 2 h, then 8 h.
UNREACHABLE_RETRIES = (timedelta(minutes=30), timedelta(hours=2), timedelta(hours=8))
# A text with no expiry of its own is not retried past this.
DEFAULT_VALIDITY = timedelta(hours=24)

_OPERATOR_FIXES = {
    30007: (
        "carriers filtered texts from {sender} as spam (Twilio 30007). Check the A2P 10DLC "
        "campaign's sample messages match what Pitwall sends, avoid link shorteners, and ask "
        "Twilio support to review the number."
    ),
    30034: (
        "{sender} is not registered for A2P 10DLC (Twilio 30034): US carriers block its texts. "
        "Register the brand and campaign in the Twilio console and add the number to the "
        "campaign's Messaging Service."
    ),
}


def retry_of(message: OutboundMessage) -> tuple[str, int]:
    """The dedupe key of the original text, and how many retries came before this one."""
    base, _, tail = message.dedupe_key.rpartition(":unreachable-retry-")
    return (base, int(tail)) if base and tail.isdigit() else (message.dedupe_key, 0)


def plan_unreachable_retry(
    message: OutboundMessage, *, now: datetime
) -> tuple[str, datetime] | None:
    """The dedupe key and time of the next try of a text the handset did not take, or None.

    None when the tries are spent or the next would land after the text has gone stale.
    """
    base, done = retry_of(message)
    if done >= len(UNREACHABLE_RETRIES):
        return None
    resume = now + UNREACHABLE_RETRIES[done]
    expires = message.expires_at or (message.created_at + DEFAULT_VALIDITY)
    if resume > expires:
        return None
    return f"{base}:unreachable-retry-{done + 1}", resume


def alert_operator(session: Session, message: OutboundMessage, code: int, *, now: datetime) -> None:
    """30007 / 30034: an alert that names the sending number and what to do, once per number."""
    fix = _OPERATOR_FIXES.get(code)
    if fix is None:
        return
    sender = message.from_address or "the rooftop's sender"
    open_alert(
        session,
        key=f"twilio:{code}:{sender}"[:150],
        message=f"Texts are not reaching customers: {fix.format(sender=sender)}",
        now=now,
    )
