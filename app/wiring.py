"""The composition root: the one place that picks concrete vendors for the ports.

Everything else in app/ depends on integrations/*/base.py only; tests and the
demo hand in their own gateway or adapter factory instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime

from app.config import Settings
from app.db import utcnow
from app.dealers.models import Rooftop
from app.repair_orders.changes import ChangeHook
from integrations.dms.base import DmsAdapter
from integrations.dms.registry import build_adapter
from integrations.twilio.base import MessageGateway
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.numbers import PhoneNumberDirectory
from integrations.twilio.numbers_gateway import TwilioPhoneNumbers

AdapterFactory = Callable[[Rooftop], DmsAdapter]


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


class AdapterCache:
    """One adapter per rooftop per process, rebuilt when the rooftop's DMS settings change.

    Adapters hold state worth keeping between polls: OAuth tokens, rate-limit
    budgets, the simulator's clock.
    """

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._adapters: dict[int, tuple[str, DmsAdapter]] = {}

    def __call__(self, rooftop: Rooftop) -> DmsAdapter:
        dms = rooftop.settings.dms
        fingerprint = json.dumps(
            [dms.kind, dms.adapter_settings(), rooftop.timezone], sort_keys=True
        )
        with self._lock:
            cached = self._adapters.get(rooftop.id)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            if cached is not None:
                cached[1].close()
            adapter = build_adapter(
                dms.kind,
                dms.adapter_settings(),
                rooftop_slug=rooftop.slug,
                timezone=rooftop.timezone,
                clock=self._clock,
            )
            self._adapters[rooftop.id] = (fingerprint, adapter)
            return adapter

    def close(self) -> None:
        with self._lock:
            for _, adapter in self._adapters.values():
                adapter.close()
            self._adapters.clear()


def change_hooks() -> list[ChangeHook]:
    """The rules that react to RO changes, in the order they run."""
    from app.followups.service import on_repair_order_change as followups
    from app.followups.watchdog import on_promised_change as new_promised_time
    from app.messaging.rules import on_repair_order_change as status_texts

    return [status_texts, followups, new_promised_time]
