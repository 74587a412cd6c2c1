"""The doctor's Twilio checks: credentials, sender numbers and where their webhooks point."""

from __future__ import annotations

from dataclasses import dataclass

from app.dealers.models import Rooftop
from app.ops.findings import Finding
from integrations.twilio.base import ErrorKind, MessageGateway, SendError
from integrations.twilio.numbers import NumbersError, PhoneNumberDirectory, PhoneNumberRecord


@dataclass(frozen=True)
class WebhookUrls:
    """Where Twilio must call Pitwall for one deployment."""

    sms: str
    voice: str
    status: str

    @classmethod
    def for_public_url(cls, public_url: str) -> WebhookUrls:
        base = public_url.rstrip("/")
        return cls(
            sms=f"{base}/webhooks/twilio/messages",
            voice=f"{base}/webhooks/twilio/voice",
            status=f"{base}/webhooks/twilio/status",
        )

    def differences(self, number: PhoneNumberRecord) -> list[tuple[str, str, str]]:
        """(field, current, wanted) for each of the number's URLs that points elsewhere."""
        pairs = (
            ("SmsUrl", number.sms_url, self.sms),
            ("VoiceUrl", number.voice_url, self.voice),
            ("StatusCallback", number.status_callback, self.status),
        )
        return [(name, have, want) for name, have, want in pairs if have != want]


def check_twilio_account(gateway: MessageGateway) -> tuple[list[Finding], bool]:
    """One read-only call with TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN; (findings, accepted)."""
    try:
        name = gateway.check_credentials()
    except SendError as exc:
        if exc.kind is ErrorKind.AUTH:
            return [
                Finding(
                    "twilio",
                    "-",
                    "problem",
                    "Twilio rejected the credentials",
                    "copy the Account SID and Auth Token from the Twilio console into "
                    "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
                )
            ], False
        return [
            Finding(
                "twilio",
                "-",
                "problem",
                f"cannot reach Twilio: {exc.message}",
                "check PITWALL_TWILIO_API_URL and outbound HTTPS from this host",
            )
        ], False
    return [Finding("twilio", "-", "ok", f"credentials accepted (account {name!r})")], True


def check_numbers(
    rooftops: list[Rooftop], numbers: PhoneNumberDirectory, urls: WebhookUrls
) -> list[Finding]:
    """Each rooftop's senders belong to the account and call Pitwall's webhooks."""
    try:
        owned = {n.phone_number: n for n in numbers.list_numbers()}
    except NumbersError as exc:
        return [
            Finding(
                "numbers",
                "-",
                "problem",
                f"cannot list the account's numbers: {exc.message}",
                "check the Twilio credentials (the key needs phone-number read access)",
            )
        ]
    found: list[Finding] = []
    for rooftop in rooftops:
        senders = [("sms_from", rooftop.sms_from), ("whatsapp_from", rooftop.whatsapp_from)]
        for key, number in senders:
            if number is None:
                continue
            record = owned.get(number)
            if record is None and key == "whatsapp_from":
                found.append(
                    Finding(
                        "number",
                        rooftop.slug,
                        "warn",
                        f"WhatsApp sender {number} is not a phone number of this account",
                        "WhatsApp senders are set up in the Twilio console (Messaging > "
                        f"Senders); point their webhook at {urls.sms}",
                    )
                )
                continue
            if record is None:
                found.append(
                    Finding(
                        "number",
                        rooftop.slug,
                        "problem",
                        f"{key} {number} is not a phone number of this Twilio account",
                        "buy or port the number into this account, or fix sms_from",
                    )
                )
                continue
            found.append(Finding("number", rooftop.slug, "ok", f"{number} is in the account"))
            found.append(_webhook_finding(rooftop.slug, record, urls))
        if rooftop.messaging_service_sid:
            found.append(
                _service_finding(rooftop.slug, rooftop.messaging_service_sid, numbers, urls)
            )
    return found


def _webhook_finding(slug: str, record: PhoneNumberRecord, urls: WebhookUrls) -> Finding:
    wrong = urls.differences(record)
    if not wrong:
        return Finding("webhooks", slug, "ok", f"{record.phone_number} calls {urls.sms}")
    detail = "; ".join(f"{name} is {have or '(empty)'!s}" for name, have, _ in wrong)
    return Finding(
        "webhooks",
        slug,
        "problem",
        f"{record.phone_number}: {detail}",
        "run `pitwall twilio connect` (check PITWALL_PUBLIC_URL first)",
    )


def _service_finding(
    slug: str, sid: str, numbers: PhoneNumberDirectory, urls: WebhookUrls
) -> Finding:
    try:
        service = numbers.fetch_service(sid)
    except NumbersError as exc:
        if exc.not_found:
            return Finding(
                "messaging service",
                slug,
                "problem",
                f"Messaging Service {sid} was not found in this account",
                "fix messaging_service_sid in the dealer file (the local sandbox has none)",
            )
        return Finding("messaging service", slug, "problem", exc.message, "")
    if service.use_inbound_webhook_on_number or service.inbound_request_url == urls.sms:
        return Finding("messaging service", slug, "ok", f"{sid} sends replies to Pitwall")
    return Finding(
        "messaging service",
        slug,
        "problem",
        f"{sid} inbound URL is {service.inbound_request_url or '(empty)'}",
        "run `pitwall twilio connect`",
    )
