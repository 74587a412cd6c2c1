"""Outbound-engine fixtures: the sample dealer, customers and ROs, the Twilio sandbox, the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Settings
from app.customers.models import Customer, CustomerPhone, Phone
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.main import create_app
from app.messaging.dispatcher import DispatchResult, dispatch_due
from app.messaging.models import OutboundMessage
from app.messaging.rules import on_repair_order_change
from app.repair_orders.changes import RepairOrderChange
from app.repair_orders.models import RepairOrder, RoLine, Vehicle
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.sandbox import SandboxConfig, SandboxServer
from tests.support import ServedApp, free_port, load_sample_dealer


class Clock:
    """The real time plus an offset the test moves by hand, so Twilio's dates still agree."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **kwargs: float) -> datetime:
        self.offset += timedelta(**kwargs)
        return self()


@dataclass
class Shop:
    """The sample dealer's Bayview Toyota, with helpers to add customers and move ROs."""

    database: Database
    rooftop_id: int
    group_id: int

    def configure(self, **changes: Any) -> None:
        """Change the rooftop's config (as if the TOML changed)."""
        with self.database.transaction() as session:
            rooftop = session.get(Rooftop, self.rooftop_id)
            assert rooftop is not None
            rooftop.config = {**rooftop.config, **changes}

    def customer(
        self,
        number: str = "+14155550142",
        *,
        first_name: str = "Sam",
        language: str | None = "en",
        preferred_channel: str | None = None,
    ) -> tuple[int, int]:
        """A customer with one primary mobile phone; returns (customer id, phone id)."""
        with self.database.transaction() as session:
            customer = Customer(
                group_id=self.group_id,
                first_name=first_name,
                last_name="Lee",
                language=language,
                preferred_channel=preferred_channel,
            )
            phone = session.scalar(
                select(Phone).where(Phone.group_id == self.group_id, Phone.e164 == number)
            )
            if phone is None:
                phone = Phone(group_id=self.group_id, e164=number, as_typed=number, kind="mobile")
            session.add_all([customer, phone])
            session.flush()
            session.add(
                CustomerPhone(
                    customer_id=customer.id, phone_id=phone.id, kind="mobile", is_primary=True
                )
            )
            return customer.id, phone.id

    def repair_order(
        self,
        customer_id: int | None,
        *,
        number: str = "R1001",
        stage: str = "checked_in",
        promised_at: datetime | None = None,
        lines: tuple[tuple[str, str, int, str], ...] = (),
    ) -> int:
        """An RO at `stage`, announced to the rules as new; returns its id."""
        with self.database.transaction() as session:
            vehicle = Vehicle(group_id=self.group_id, year=2021, make="Toyota", model="RAV4")
            session.add(vehicle)
            session.flush()
            ro = RepairOrder(
                rooftop_id=self.rooftop_id,
                ro_number=number,
                customer_id=customer_id,
                vehicle_id=vehicle.id,
                advisor_name="Dana Ruiz",
                raw_status=stage.upper(),
                stage=stage,
                opened_at=utcnow(),
                promised_at=promised_at,
                content_hash="x",
            )
            session.add(ro)
            session.flush()
            for code, description, cents, status in lines:
                session.add(
                    RoLine(
                        repair_order_id=ro.id,
                        line_code=code,
                        op_code=code,
                        description=description,
                        amount_cents=cents,
                        status=status,
                    )
                )
            session.flush()
            session.refresh(ro)
            self._announce(session, ro, previous=None)
            return ro.id

    def move(self, ro_id: int, stage: str, *, promised_at: datetime | None = None) -> None:
        """The DMS moved the RO to `stage`: the poller's transaction runs the rule."""
        with self.database.transaction() as session:
            ro = session.get(RepairOrder, ro_id)
            assert ro is not None
            previous = ro.stage
            ro.stage = stage
            if promised_at is not None:
                ro.promised_at = promised_at
            session.flush()
            self._announce(session, ro, previous=previous)

    def _announce(self, session: Any, ro: RepairOrder, *, previous: str | None) -> None:
        rooftop = session.get(Rooftop, self.rooftop_id)
        change = RepairOrderChange(
            ro=ro,
            rooftop=rooftop,
            is_new=previous is None,
            previous_stage=previous,
            previous_promised_at=None,
            at=utcnow(),
        )
        on_repair_order_change(session, change)

    def messages(self) -> list[OutboundMessage]:
        with self.database.sessions() as session:
            return list(session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


@pytest.fixture
def shop(database: Database) -> Shop:
    load_sample_dealer(database)
    with database.sessions() as session:
        rooftop = session.scalar(select(Rooftop).where(Rooftop.slug == "bayview-toyota"))
        assert rooftop is not None
        shop = Shop(database=database, rooftop_id=rooftop.id, group_id=rooftop.group_id)
    # Most tests are about other rules: no quiet hours, no cap, fast pacing.
    shop.configure(quiet_hours="off", daily_cap=50, send_rate_per_second=1000)
    return shop


@pytest.fixture
def app_port() -> int:
    return free_port()


@pytest.fixture
def app_settings(settings: Settings, app_port: int) -> Settings:
    return settings.model_copy(update={"public_url": f"http://127.0.0.1:{app_port}"})


@pytest.fixture
def served_app(app_settings: Settings, database: Database, app_port: int) -> Iterator[ServedApp]:
    with ServedApp(create_app(app_settings, database=database), port=app_port) as served:
        yield served


@pytest.fixture
def sandbox(app_settings: Settings, served_app: ServedApp) -> Iterator[SandboxServer]:
    config = SandboxConfig(
        account_sid=app_settings.twilio_account_sid,
        auth_token=app_settings.twilio_auth_token,
        pitwall_public_url=app_settings.public_url,
        callback_delay_s=0.3,
        whatsapp_window=True,
        landlines=frozenset({"+14155550177"}),
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def gateway(app_settings: Settings, sandbox: SandboxServer) -> Iterator[TwilioGateway]:
    gateway = TwilioGateway(
        app_settings.twilio_account_sid,
        app_settings.twilio_auth_token,
        api_url=sandbox.url,
        timeout=5,
    )
    yield gateway
    gateway.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatch(
    database: Database, gateway: TwilioGateway, app_settings: Settings, clock: Clock
) -> Callable[..., DispatchResult]:
    """Run the dispatcher once (as `pitwall worker` would) against the sandbox."""

    def run(**kwargs: Any) -> DispatchResult:
        options: dict[str, Any] = {
            "gateway": gateway,
            "public_url": app_settings.public_url,
            "worker_id": "test",
            "clock": clock,
            "batch_size": 50,
            "concurrency": 4,
        }
        options.update(kwargs)
        return dispatch_due(database, **options)

    return run


def sent_to(sandbox: SandboxServer, to: str | None = None) -> list[Any]:
    """Messages the sandbox account holds (what customers' phones got)."""
    return [m for m in sandbox.state.list_messages(to=to)]


def at_local(zone: str, *args: int) -> datetime:
    """A wall-clock time in `zone` as aware UTC."""
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]
