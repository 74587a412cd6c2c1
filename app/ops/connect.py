"""`pitwall twilio connect`: point every rooftop number (and Messaging Service) at Pitwall.

First a plan (what changes, old -> new), then, unless it is a dry run, the changes,
one API call per number. Running it twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.dealers.models import Rooftop
from app.ops.doctor_routing import services_by_number
from app.ops.doctor_twilio import WebhookUrls
from integrations.twilio.numbers import MessagingServiceRecord, NumbersError, PhoneNumberDirectory


@dataclass(frozen=True)
class Change:
    """One field of one number or service that points elsewhere."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Target:
    """A number or Messaging Service of a rooftop, with what would change on it."""

    rooftop: str
    kind: str  # number | messaging service
    label: str  # +14155550100 or MG...
    sid: str | None
    changes: tuple[Change, ...]
    problem: str = ""

    @property
    def up_to_date(self) -> bool:
        return not self.changes and not self.problem


def plan_connect(
    rooftops: list[Rooftop], numbers: PhoneNumberDirectory, urls: WebhookUrls
) -> list[Target]:
    """What `connect` would change, per number and Messaging Service; reads only."""
    owned = {n.phone_number: n for n in numbers.list_numbers()}
    by_number, _unknown = services_by_number(numbers)
    ours = {n for r in rooftops for n in (r.sms_from, r.whatsapp_from) if n}
    targets: list[Target] = []
    for rooftop in rooftops:
        seen: set[str] = set()
        service = by_number.get(rooftop.sms_from or "")
        if service is not None and service.use_inbound_webhook_on_number:
            # The service defers to its numbers: each of them must point at Pitwall.
            seen_numbers = [n for n in service.phone_numbers if n in ours]
        else:
            seen_numbers = []
        for number in (rooftop.sms_from, rooftop.whatsapp_from, *seen_numbers):
            if number is None or number in seen:
                continue
            seen.add(number)
            record = owned.get(number)
            if record is None:
                if number == rooftop.whatsapp_from and number != rooftop.sms_from:
                    # WhatsApp senders are configured in the console, not as numbers.
                    continue
                targets.append(
                    Target(
                        rooftop.slug,
                        "number",
                        number,
                        None,
                        (),
                        problem="not a phone number of this account; nothing to point",
                    )
                )
                continue
            changes = tuple(Change(f, old, new) for f, old, new in urls.differences(record))
            targets.append(Target(rooftop.slug, "number", number, record.sid, changes))
        if rooftop.messaging_service_sid:
            targets.append(_service_target(rooftop, numbers, urls))
        elif service is not None:
            # In a service the dealer file does not name: its inbound URL wins over the number's.
            targets.append(_unnamed_service_target(rooftop.slug, service, ours, urls))
    return targets


def _unnamed_service_target(
    slug: str, service: MessagingServiceRecord, ours: set[str], urls: WebhookUrls
) -> Target:
    if service.use_inbound_webhook_on_number or service.inbound_request_url == urls.sms:
        return Target(slug, "messaging service", service.sid, service.sid, ())
    strangers = sorted(set(service.phone_numbers) - ours)
    if strangers:
        # Re-pointing it would take texts away from whatever serves those numbers.
        return Target(
            slug,
            "messaging service",
            service.sid,
            service.sid,
            (),
            problem=f"its inbound URL ({service.inbound_request_url or 'none'}) wins over the "
            f"number's, and it also holds numbers Pitwall does not know ({', '.join(strangers)}): "
            "point it at Pitwall or set UseInboundWebhookOnNumber yourself",
        )
    change = Change("InboundRequestUrl", service.inbound_request_url, urls.sms)
    return Target(slug, "messaging service", service.sid, service.sid, (change,))


def _service_target(rooftop: Rooftop, numbers: PhoneNumberDirectory, urls: WebhookUrls) -> Target:
    sid = rooftop.messaging_service_sid or ""
    try:
        service = numbers.fetch_service(sid)
    except NumbersError as exc:
        why = "not found in this account" if exc.not_found else exc.message
        return Target(rooftop.slug, "messaging service", sid, sid, (), problem=why)
    if service.use_inbound_webhook_on_number or service.inbound_request_url == urls.sms:
        return Target(rooftop.slug, "messaging service", sid, sid, ())
    change = Change("InboundRequestUrl", service.inbound_request_url, urls.sms)
    return Target(rooftop.slug, "messaging service", sid, sid, (change,))


def apply_connect(
    targets: list[Target],
    numbers: PhoneNumberDirectory,
    urls: WebhookUrls,
    *,
    echo: Callable[[str], None] = print,
) -> int:
    """Make the planned changes; returns how many numbers/services failed to update."""
    failures = 0
    for target in targets:
        if target.up_to_date or target.problem or target.sid is None:
            continue
        try:
            if target.kind == "number":
                numbers.update_number(
                    target.sid, sms_url=urls.sms, voice_url=urls.voice, status_callback=urls.status
                )
            else:
                numbers.update_service(target.sid, inbound_request_url=urls.sms)
        except NumbersError as exc:
            failures += 1
            echo(f"  {target.rooftop} {target.label}: FAILED: {exc.message}")
        else:
            echo(f"  {target.rooftop} {target.label}: updated")
    return failures


def describe_plan(targets: list[Target]) -> list[str]:
    """Human lines: each target, and for each change `field: old -> new`."""
    lines: list[str] = []
    for target in targets:
        head = f"{target.rooftop}  {target.kind} {target.label}"
        if target.problem:
            lines.append(f"{head}: PROBLEM: {target.problem}")
        elif target.up_to_date:
            lines.append(f"{head}: already points at Pitwall")
        else:
            lines.append(f"{head}:")
            lines.extend(f"    {c.field}: {c.old or '(empty)'} -> {c.new}" for c in target.changes)
    return lines
