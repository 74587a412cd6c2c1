"""Send-time policies: consent, quiet hours, the daily cap, shadow mode.

Each policy answers for one claimed message; the dispatcher records the answer on
the row (`suppressed_reason` says which rule held or suppressed it), so an
advisor can read why a customer was, or was not, told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.config import QuietHours, RooftopConfig
from app.conversations.models import Call, InboundMessage
from app.customers.carrier import carrier_blocked, sender_key
from app.customers.models import Consent
from app.messaging.facts import AUTOMATIC_KINDS, BatchFacts, Message, local_day
from app.messaging.models import OutboundMessage

# Status texts the customer must act on are never held back by the cap, nor is news that
# their car will be late (the watchdog): both change what the customer does today.
CAP_EXEMPT_STAGES = ("awaiting_approval", "ready_for_pickup")
CAP_EXEMPT_KINDS = ("watchdog",)
# A customer who wrote this recently is mid-conversation: quiet hours do not hold replies.
RECENT_CONVERSATION = timedelta(hours=4)


@dataclass(frozen=True)
class Verdict:
    """What a policy decided: None means "go on"; otherwise hold, suppress or expire."""

    action: str  # defer | suppress | expire
    reason: str
    not_before: datetime | None = None


def consent_verdict(
    session: Session,
    *,
    message: Message,
    rooftop: RooftopConfig,
    facts: BatchFacts | None = None,
) -> Verdict | None:
    """The consent ledger: the latest row for (phone, channel, purpose) wins.

    Status texts fall back to `status_texts_default`, marketing to
    `followups_default`; conversational replies are allowed unless the customer
    revoked status texts (STOP).
    """
    if message.phone_id is None:
        return Verdict("suppress", "no phone to check consent against")
    blocked = _blocked_at_twilio(session, message=message, rooftop=rooftop, facts=facts)
    if blocked is not None:
        return blocked
    ledger_purpose = "marketing" if message.purpose == "marketing" else "status"
    if facts is not None:
        latest = facts.consent.get((message.phone_id or 0, message.channel, ledger_purpose))
    else:
        latest = _latest_consent(session, message=message, purpose=ledger_purpose)
    if latest is not None:
        action, source = latest
        if action == "revoked":
            return Verdict(
                "suppress", f"consent: {ledger_purpose} on {message.channel} revoked ({source})"
            )
        return None
    if message.purpose == "conversational":
        return None
    allowed = (
        rooftop.followups_default if ledger_purpose == "marketing" else rooftop.status_texts_default
    )
    if not allowed:
        return Verdict(
            "suppress",
            f"consent: no {ledger_purpose} consent on file and the rooftop default is off",
        )
    return None


def _blocked_at_twilio(
    session: Session,
    *,
    message: Message,
    rooftop: RooftopConfig,
    facts: BatchFacts | None,
) -> Verdict | None:
    """Twilio refuses SMS to a phone that sent its STOP (21610) until it texts START.

    Pitwall's own consent may say yes (the customer opted back in in words Twilio does not
    know, or an advisor recorded it): sending would only collect a 21610.
    """
    if message.channel != "sms" or message.phone_id is None:
        return None
    sender = sender_key(rooftop)
    if sender is None:
        return None
    if facts is not None:
        blocked = facts.carrier.get((message.phone_id, sender)) == "revoked"
    else:
        blocked = carrier_blocked(session, phone_id=message.phone_id, sender=sender)
    if not blocked:
        return None
    return Verdict(
        "suppress",
        f"Twilio blocks texts from {sender} to this phone until the customer texts START",
    )


def _latest_consent(session: Session, *, message: Message, purpose: str) -> tuple[str, str] | None:
    row = session.execute(
        select(Consent.action, Consent.source)
        .where(
            Consent.phone_id == message.phone_id,
            Consent.channel == message.channel,
            Consent.purpose == purpose,
        )
        .order_by(Consent.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


@lru_cache(maxsize=4096)
def recipient_zone(e164: str) -> ZoneInfo | None:
    """The number's zone when phonenumbers knows exactly one (most NANP area codes)."""
    try:
        zones = phone_timezones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return None
    if len(zones) != 1 or zones[0] == "Etc/Unknown":
        return None
    try:
        return ZoneInfo(zones[0])
    except ZoneInfoNotFoundError:
        return None


def next_allowed(now: datetime, quiet: QuietHours, zones: list[ZoneInfo]) -> datetime | None:
    """The first moment at or after `now` outside quiet hours in every zone; None if now is fine.

    Each window end is a wall-clock time in its zone, so a night across a
    daylight-saving change ends at the right UTC instant.
    """
    if not quiet.enabled or quiet.end is None:
        return None
    candidate = now
    for _ in range(2 * len(zones) + 2):  # moving past one zone's night can land in another's
        moved = False
        for zone in zones:
            local = candidate.astimezone(zone)
            if not quiet.contains(local.time()):
                continue
            end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
            if end.replace(tzinfo=None) <= local.replace(tzinfo=None):
                end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
            candidate = end.astimezone(UTC)
            moved = True
        if not moved:
            break
    return None if candidate == now else candidate


def recently_wrote(session: Session, *, message: Message, now: datetime) -> bool:
    """True when the customer texted or called within the last four hours."""
    since = now - RECENT_CONVERSATION
    inbound = []
    if message.customer_id is not None:
        inbound.append(InboundMessage.customer_id == message.customer_id)
    if message.phone_id is not None:
        inbound.append(InboundMessage.phone_id == message.phone_id)
    if inbound and session.scalar(
        select(InboundMessage.id).where(or_(*inbound), InboundMessage.received_at >= since).limit(1)
    ):
        return True
    if message.customer_id is None:
        return False
    return (
        session.scalar(
            select(Call.id)
            .where(Call.customer_id == message.customer_id, Call.started_at >= since)
            .limit(1)
        )
        is not None
    )


def quiet_hours_verdict(
    session: Session,
    *,
    message: Message,
    rooftop: RooftopConfig,
    recipient_e164: str | None,
    now: datetime,
) -> Verdict | None:
    """Hold automatic messages during quiet hours in the rooftop's and the recipient's zone."""
    if not rooftop.quiet.enabled:
        return None  # no need to look up the recipient's zone (a phonenumbers parse)
    if message.purpose == "conversational" and recently_wrote(session, message=message, now=now):
        return None
    zones = [rooftop.zone]
    own = recipient_zone(recipient_e164) if recipient_e164 else None
    if own is not None and own.key != rooftop.zone.key:
        zones.append(own)
    resume = next_allowed(now, rooftop.quiet, zones)
    if resume is None:
        return None
    where = " and ".join(zone.key for zone in zones)
    return _hold(message, resume, f"quiet hours {rooftop.quiet_hours} ({where})")


def daily_cap_verdict(
    session: Session,
    *,
    message: Message,
    rooftop: RooftopConfig,
    now: datetime,
    facts: BatchFacts | None = None,
) -> Verdict | None:
    """At most `daily_cap` automatic messages per customer per rooftop-local day.

    Messages sent (or being sent) today count; over the cap the message waits for
    the next local morning. Approval requests, ready-for-pickup and late notices are exempt.
    """
    if message.kind not in AUTOMATIC_KINDS or message.customer_id is None:
        return None
    if message.kind in CAP_EXEMPT_KINDS:
        return None
    if message.kind == "status" and message.stage in CAP_EXEMPT_STAGES:
        return None
    if facts is not None and message.rooftop_id in facts.days:
        day_start, next_day = facts.days[message.rooftop_id]
    else:
        day_start, next_day = local_day(now, rooftop)
    if facts is not None:
        sent_today = facts.counted[(message.customer_id, message.rooftop_id)]
    else:
        sent_today = (
            session.scalar(
                select(func.count(OutboundMessage.id)).where(
                    OutboundMessage.customer_id == message.customer_id,
                    OutboundMessage.rooftop_id == message.rooftop_id,
                    OutboundMessage.kind.in_(AUTOMATIC_KINDS),
                    OutboundMessage.id != message.id,
                    or_(
                        OutboundMessage.state == "sending",
                        (OutboundMessage.sent_at >= day_start)
                        & (OutboundMessage.sent_at < next_day),
                    ),
                )
            )
            or 0
        )
    if sent_today < rooftop.daily_cap:
        return None
    today = now.astimezone(rooftop.zone).date()
    resume = next_allowed(next_day, rooftop.quiet, [rooftop.zone]) or next_day
    return _hold(message, resume, f"daily cap {rooftop.daily_cap} reached for {today}")


def daily_cap_hold(
    session: Session, *, message: OutboundMessage, rooftop: RooftopConfig, now: datetime
) -> str | None:
    """Why the daily cap holds, or held until it went stale, this message; None if it does not.

    A message the dispatcher has not looked at yet is asked the cap's question now.
    """
    reason = message.suppressed_reason or ""
    if message.state in ("pending", "expired") and reason.startswith("daily cap"):
        return reason
    if message.state != "pending":
        return None
    verdict = daily_cap_verdict(session, message=message, rooftop=rooftop, now=now)
    return None if verdict is None else verdict.reason


def _hold(message: Message, resume: datetime, why: str) -> Verdict:
    if message.expires_at is not None and resume > message.expires_at:
        return Verdict("expire", f"{why}; stale before {resume:%Y-%m-%d %H:%MZ}")
    return Verdict("defer", f"{why}: held until {resume:%Y-%m-%d %H:%MZ}", resume)
