"""The demo's customers who act on their own: they text, call, approve, opt out and back in.

Without them a demo nobody touches shows texts going out and nothing coming back,
and the reports' contacts and missed calls stay empty. Every so often one simulated
customer does one thing, through the Twilio sandbox's customer side (signed webhooks,
exactly as a visitor's clicks in the phone view): asks whether the car is ready (in
English or Spanish), calls the 24-hour store and presses 1 to reach a desk nobody
answers (a missed call), calls the closed store (after hours), approves recommended
work with YES, hears the status on a call and hangs up, or texts STOP and later START.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

# Numbers no simulated DMS customer has: strangers calling in.
STRANGERS = ("+14155550871", "+14155550872", "+14155550873", "+14155550874")


@dataclass(frozen=True)
class Stores:
    """The demo's numbers: the store open around the clock, and the closed one."""

    open_number: str
    open_name: str
    closed_number: str
    closed_name: str


class DemoCustomers:
    """One customer action every `interval` seconds on a daemon thread, until stopped."""

    def __init__(self, phone_url: str, stores: Stores, *, interval: float = 35.0) -> None:
        self.phone_url = phone_url.rstrip("/")
        self.stores = stores
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(base_url=self.phone_url, timeout=20.0)
        self._strangers = itertools.cycle(STRANGERS)
        self._opted_out: list[str] = []
        self.actions: list[Callable[[], str | None]] = [
            self.ask_status,
            self.call_for_status,
            self.call_open_store_and_miss,
            self.approve_work,
            self.call_closed_store,
            self.ask_status_in_spanish,
            self.opt_out_or_back_in,
        ]

    def start(self, *, first_after: float = 20.0) -> DemoCustomers:
        self._thread = threading.Thread(
            target=self._run, args=(first_after,), name="demo-customers", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=25)
        self._client.close()

    def _run(self, first_after: float) -> None:
        if self._stop.wait(first_after):
            return
        for action in itertools.cycle(self.actions):
            try:
                done = action()
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                log.warning("demo customer %s failed: %s", action.__name__, exc)
            else:
                if done:
                    log.info("demo customer: %s", done)
            if self._stop.wait(self.interval):
                return

    # --- what the phones show -----------------------------------------------------

    def threads(self) -> dict[str, list[dict[str, Any]]]:
        threads: dict[str, list[dict[str, Any]]] = (
            self._client.get("/_sandbox/phone.json").raise_for_status().json()["threads"]
        )
        return threads

    def customers_of(
        self, store_name: str, *, wanting: Callable[[str], bool], latest: bool = True
    ) -> list[str]:
        """Texting customers of that store whose latest text from it (or any, with
        ``latest=False``) satisfies `wanting`; the most recently texted first."""
        threads = sorted(
            self.threads().items(), key=lambda item: item[1][-1]["at"] if item[1] else ""
        )
        found = []
        for number, entries in reversed(threads):
            if number.startswith("whatsapp:") or number in self._opted_out:
                continue
            texts = [e["text"] for e in entries if e["kind"] == "outbound"]
            if not texts or store_name not in " ".join(texts):
                continue
            if any(wanting(text) for text in (texts[-1:] if latest else texts)):
                found.append(number)
        return found

    def customer_of(
        self, store_name: str, *, wanting: Callable[[str], bool], latest: bool = True
    ) -> str | None:
        found = self.customers_of(store_name, wanting=wanting, latest=latest)
        return found[0] if found else None

    # --- the actions ----------------------------------------------------------------

    def _text(self, number: str, body: str, to: str | None = None) -> None:
        payload = {"from": number, "body": body, **({"to": to} if to else {})}
        self._client.post("/_sandbox/inbound", json=payload).raise_for_status()

    def ask_status(self) -> str | None:
        number = self.customer_of(
            self.stores.open_name, wanting=lambda text: "ready for pickup" not in text
        )
        if number is None:
            return None
        self._text(number, "Hi, is my car ready yet?")
        return f"{number} asked for the status"

    def ask_status_in_spanish(self) -> str | None:
        number = self.customer_of(
            self.stores.open_name, wanting=lambda text: "orden" in text, latest=False
        )
        if number is None:
            return None
        self._text(number, "Hola, ¿ya está listo mi carro?")
        return f"{number} asked for the status in Spanish"

    def approve_work(self) -> str | None:
        number = self.customer_of(
            self.stores.open_name,
            wanting=lambda text: "Reply YES" in text and "Total" in text,
            latest=False,
        )
        if number is None:
            return None
        self._text(number, "YES")
        return f"{number} approved the recommended work"

    def call_open_store_and_miss(self) -> str | None:
        """A customer calls, hears the status, presses 1; the desk does not pick up."""
        number = self.customer_of(self.stores.open_name, wanting=lambda text: True)
        caller = number or next(self._strangers)
        call = (
            self._client.post(
                "/_sandbox/call", json={"from": caller, "to": self.stores.open_number}
            )
            .raise_for_status()
            .json()
        )
        sid = call["call_sid"]
        if call.get("dial") is None:
            pressed = self._client.post(f"/_sandbox/call/{sid}/digits", json={"digits": "1"})
            if pressed.status_code != 200 or pressed.json().get("dial") is None:
                return f"{caller} called {self.stores.open_name} and heard the status"
        self._client.post(
            f"/_sandbox/call/{sid}/dial-status", json={"dial_status": "no-answer"}
        ).raise_for_status()
        return f"{caller} called {self.stores.open_name}; nobody answered (a missed call)"

    def call_for_status(self) -> str | None:
        """A customer calls, hears the car's status and is done (#): no one was needed."""
        numbers = self.customers_of(
            self.stores.open_name, wanting=lambda text: "ready for pickup" not in text
        )
        for number in numbers[:4]:
            call = (
                self._client.post(
                    "/_sandbox/call", json={"from": number, "to": self.stores.open_number}
                )
                .raise_for_status()
                .json()
            )
            sid = call["call_sid"]
            if call.get("dial") is not None:  # two cars on one phone: the desk answers that
                self._client.post(
                    f"/_sandbox/call/{sid}/dial-status", json={"dial_status": "completed"}
                ).raise_for_status()
                continue
            self._client.post(f"/_sandbox/call/{sid}/digits", json={"digits": "#"})
            return f"{number} called {self.stores.open_name} and heard the status"
        return None

    def call_closed_store(self) -> str | None:
        caller = next(self._strangers)
        self._client.post(
            "/_sandbox/call", json={"from": caller, "to": self.stores.closed_number}
        ).raise_for_status()
        return f"{caller} called {self.stores.closed_name} after hours"

    def opt_out_or_back_in(self) -> str | None:
        if self._opted_out:
            number = self._opted_out.pop()
            self._text(number, "START")
            return f"{number} opted back in"
        customer = self.customer_of(self.stores.open_name, wanting=lambda text: True)
        if customer is None:
            return None
        self._text(customer, "STOP")
        self._opted_out.append(customer)
        return f"{customer} opted out"
