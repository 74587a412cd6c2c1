"""The composition root: the one place that picks concrete vendors for the ports.

Everything else in app/ depends on integrations/*/base.py only; tests and the
demo hand in their own gateway or adapter factory instead.
"""

from __future__ import annotations

from app.config import Settings
from app.repair_orders.changes import ChangeHook
from integrations.twilio.base import MessageGateway
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.numbers import PhoneNumberDirectory
from integrations.twilio.numbers_gateway import TwilioPhoneNumbers


def build_gateway(settings: Settings) -> MessageGateway:
    """Twilio's official client, pointed at PITWALL_TWILIO_API_URL (Twilio or the sandbox)."""
    return TwilioGateway(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        api_url=settings.twilio_api_url,
    )


def build_phone_numbers(settings: Settings) -> PhoneNumberDirectory:
    """The account's phone numbers, for `pitwall doctor` and `pitwall twilio connect`."""
    return TwilioPhoneNumbers(
        settings.twilio_account_sid, settings.twilio_auth_token, api_url=settings.twilio_api_url
    )


def change_hooks() -> list[ChangeHook]:
    """The rules that react to RO changes, in the order they run."""
    from app.followups.service import on_repair_order_change as followups
    from app.followups.watchdog import on_promised_change as new_promised_time
    from app.messaging.rules import on_repair_order_change as status_texts

    return [status_texts, followups, new_promised_time]
