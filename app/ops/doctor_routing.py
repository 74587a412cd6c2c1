"""The doctor's checks of where Twilio really sends a rooftop's texts, and who answers STOP.

Inbound routing (Twilio's Messaging Service resource, twilio-oai ``messaging/v1``): a number
that sits in a Messaging Service gets its inbound texts at the service's
``inbound_request_url`` unless ``use_inbound_webhook_on_number`` is set; its own SmsUrl is
then ignored. A2P 10DLC numbers must sit in a service, so a number whose own webhook points
at Pitwall can still send every reply elsewhere. These checks read every service of the
account and its numbers, so "ok" means Twilio will call Pitwall.

Keywords (app/customers/carrier.py): Twilio's API cannot say whether a service has Advanced
Opt-Out on; what it sent Pitwall can. A keyword that came with ``OptOutType`` on a rooftop set
to ``standard`` (or a bare STOP without one on a rooftop set to ``advanced``) means the
setting is wrong, and the doctor says which way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.conversations.models import InboundMessage
from app.customers.carrier import TWILIO_OPT_OUT, keyword_mode
from app.db import utcnow
from app.dealers.models import Rooftop
from app.ops.doctor_twilio import WebhookUrls
from app.ops.findings import Finding
from integrations.twilio.numbers import (
    MessagingServiceRecord,
    NumbersError,
    PhoneNumberDirectory,
    PhoneNumberRecord,
)

# NANP toll-free prefixes: toll-free numbers are verified, not registered for 10DLC.
_TOLL_FREE = ("+1800", "+1833", "+1844", "+1855", "+1866", "+1877", "+1888")
KEYWORD_LOOKBACK = timedelta(days=90)


def services_by_number(
    numbers: PhoneNumberDirectory,
) -> tuple[dict[str, MessagingServiceRecord], Finding | None]:
    """Each number that sits in a Messaging Service -> that service (or why it is unknown)."""
    try:
        services = numbers.list_services()
    except NumbersError as exc:
        return {}, Finding(
            "routing",
            "-",
            "warn",
            f"cannot list the account's Messaging Services: {exc.message}",
            "give the API key Messaging read access; until then inbound routing through "
            "a Messaging Service is unchecked",
        )
    return {number: s for s in services for number in s.phone_numbers}, None


def check_routing(
    rooftops: list[Rooftop], numbers: PhoneNumberDirectory, urls: WebhookUrls
) -> list[Finding]:
    """Read the account's numbers and services once, then check every rooftop's routing."""
    try:
        owned = {n.phone_number: n for n in numbers.list_numbers()}
    except NumbersError:
        return []  # check_numbers has said so already
    by_number, unknown = services_by_number(numbers)
    if unknown is not None:
        return [unknown]
    return check_inbound_routing(rooftops, owned, by_number, urls)


def check_inbound_routing(
    rooftops: list[Rooftop],
    owned: dict[str, PhoneNumberRecord],
    by_number: dict[str, MessagingServiceRecord],
    urls: WebhookUrls,
) -> list[Finding]:
    """Where Twilio posts each rooftop's inbound texts, given the services its numbers sit in."""
    found: list[Finding] = []
    for rooftop in rooftops:
        number = rooftop.sms_from
        if number and number.startswith("+"):
            found.extend(_number_routing(rooftop, number, by_number.get(number), urls))
        configured = next(
            (s for s in by_number.values() if s.sid == rooftop.messaging_service_sid), None
        )
        if configured is not None and configured.use_inbound_webhook_on_number:
            found.extend(_deferred_numbers(rooftop.slug, configured, owned, urls))
    return found


def _number_routing(
    rooftop: Rooftop, number: str, service: MessagingServiceRecord | None, urls: WebhookUrls
) -> list[Finding]:
    slug = rooftop.slug
    if service is None:
        if number.startswith("+1") and not number.startswith(_TOLL_FREE):
            return [
                Finding(
                    "routing",
                    slug,
                    "warn",
                    f"{number} is in no Messaging Service: US carriers refuse texts from a long "
                    "code not registered for A2P 10DLC (error 30034)",
                    "add the number to a Messaging Service with a registered A2P campaign and "
                    "set messaging_service_sid in the dealer file",
                )
            ]
        return []
    found: list[Finding] = []
    if rooftop.messaging_service_sid != service.sid:
        found.append(
            Finding(
                "routing",
                slug,
                "warn",
                f"{number} sits in Messaging Service {service.sid}, which the dealer file "
                "does not name",
                f'set messaging_service_sid = "{service.sid}" so texts go out through the '
                "service (its A2P registration) and STOP is tracked per service",
            )
        )
        # The service's own finding (doctor_twilio) covers a service the file names.
        if service.use_inbound_webhook_on_number:
            found.append(
                Finding(
                    "routing",
                    slug,
                    "ok",
                    f"{service.sid} lets {number} use its own webhook",
                )
            )
        elif service.inbound_request_url != urls.sms:
            found.append(
                Finding(
                    "routing",
                    slug,
                    "problem",
                    f"texts to {number} go to Messaging Service {service.sid}'s inbound URL "
                    f"{service.inbound_request_url or '(none: Twilio drops them)'}, not to "
                    "Pitwall; the number's own SmsUrl is ignored",
                    "run `pitwall twilio connect`, or set the service to use each "
                    "number's own webhook",
                )
            )
        else:
            found.append(
                Finding("routing", slug, "ok", f"texts to {number} reach Pitwall via {service.sid}")
            )
    return found


def _deferred_numbers(
    slug: str,
    service: MessagingServiceRecord,
    owned: dict[str, PhoneNumberRecord],
    urls: WebhookUrls,
) -> list[Finding]:
    """A service that defers to its numbers: every one of them must call Pitwall."""
    found = []
    for number in service.phone_numbers:
        record = owned.get(number)
        if record is not None and record.sms_url != urls.sms:
            found.append(
                Finding(
                    "routing",
                    slug,
                    "problem",
                    f"{service.sid} uses each number's own webhook, and {number}'s SmsUrl is "
                    f"{record.sms_url or '(empty)'}",
                    "run `pitwall twilio connect`",
                )
            )
    return found


def check_keyword_handling(
    session: Session, rooftops: list[Rooftop], *, now: datetime | None = None
) -> list[Finding]:
    """Who answers STOP/START/HELP per rooftop, checked against what Twilio actually sent."""
    since = (now or utcnow()) - KEYWORD_LOOKBACK
    found: list[Finding] = []
    for rooftop in rooftops:
        mode = keyword_mode(rooftop.settings)
        flagged = bare_stop = 0
        rows = session.execute(
            select(InboundMessage.body, InboundMessage.raw).where(
                InboundMessage.rooftop_id == rooftop.id,
                InboundMessage.channel == "sms",
                InboundMessage.reply_kind.in_(("opt_out", "opt_in", "help")),
                InboundMessage.received_at >= since,
            )
        )
        for body, raw in rows:
            if (raw or {}).get("OptOutType"):
                flagged += 1
            elif (body or "").strip().upper() in TWILIO_OPT_OUT:
                bare_stop += 1
        found.append(_keyword_finding(rooftop.slug, mode, flagged, bare_stop))
    return found


def _keyword_finding(slug: str, mode: str, flagged: int, bare_stop: int) -> Finding:
    if mode != "advanced" and flagged:
        return Finding(
            "keywords",
            slug,
            "warn",
            f"Twilio flagged {flagged} keyword(s) with OptOutType in 90 days: Advanced "
            "Opt-Out is on for this sender",
            'set carrier_keywords = "advanced" for this rooftop',
        )
    if mode == "advanced" and bare_stop and not flagged:
        return Finding(
            "keywords",
            slug,
            "warn",
            f"{bare_stop} bare STOP(s) came without OptOutType: Advanced Opt-Out looks off",
            'set carrier_keywords = "standard" (or turn Advanced Opt-Out on)',
        )
    who = {
        "standard": "Twilio answers STOP/START/HELP itself; Pitwall records them and stays silent",
        "advanced": "Advanced Opt-Out answers the keywords it flags; Pitwall answers the rest",
        "off": "Pitwall answers every keyword (Twilio's keyword handling is off)",
    }[mode]
    return Finding("keywords", slug, "ok", who)
