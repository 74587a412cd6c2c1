"""Conversation test arrangements: the sample dealer, signed Twilio posts, people and ROs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import create_api_token
from app.config import Settings
from app.customers.models import Customer, CustomerPhone, Phone
from app.dealers.models import DealerGroup, Rooftop
from app.deps import Database
from app.main import create_app
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder, RoLine, Vehicle
from integrations.twilio.webhooks import SIGNATURE_HEADER, compute_signature
from tests.support import load_sample_dealer

# Twilio calls the public address (a tunnel / proxy); the app listens somewhere else.
PUBLIC_URL = "https://pitwall.example.com"
TOYOTA_SMS = "+14155550100"
TOYOTA_WHATSAPP = "+14155550101"
TOYOTA_DESK = "+14155550199"
FORD_SMS = "+14155550200"
# Monday 23 Nov 2026, 10:00 in Los Angeles: the store is open.
OPEN_HOURS = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
_sids = itertools.count(1)


def new_sid(prefix: str = "SM") -> str:
    return f"{prefix}{next(_sids):032x}"


@pytest.fixture
def conversation_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"public_url": PUBLIC_URL})


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(OPEN_HOURS, tick=True) as traveller:
        yield traveller


@pytest.fixture
def client(
    database: Database, conversation_settings: Settings, clock: object
) -> Iterator[TestClient]:
    load_sample_dealer(database)
    app = create_app(conversation_settings, database=database)
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class Twilio:
    """Posts webhooks the way Twilio does: form-encoded and signed for the public URL."""

    client: TestClient
    token: str

    def post(
        self, path: str, form: dict[str, str], *, sign: bool = True, signature: str | None = None
    ):  # type: ignore[no-untyped-def]
        headers = {}
        if sign:
            headers[SIGNATURE_HEADER] = signature or compute_signature(
                self.token, PUBLIC_URL + path, form
            )
        return self.client.post(path, data=form, headers=headers)

    def text(
        self, body: str, *, from_: str, to: str = TOYOTA_SMS, sid: str | None = None, **extra: str
    ):  # type: ignore[no-untyped-def]
        form = {
            "MessageSid": sid or new_sid(),
            "AccountSid": "AC" + "1" * 32,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            **extra,
        }
        return self.post("/webhooks/twilio/messages", form)

    def call(self, *, from_: str, to: str = TOYOTA_SMS, sid: str | None = None):  # type: ignore[no-untyped-def]
        form = {
            "CallSid": sid or new_sid("CA"),
            "From": from_,
            "To": to,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "Caller": from_,
            "Called": to,
        }
        return self.post("/webhooks/twilio/voice", form)


@pytest.fixture
def twilio(client: TestClient, conversation_settings: Settings) -> Twilio:
    return Twilio(client=client, token=conversation_settings.twilio_auth_token)


def rooftop(session: Session, slug: str = "bayview-toyota") -> Rooftop:
    found = session.scalar(select(Rooftop).where(Rooftop.slug == slug))
    assert found is not None
    return found


def keyword_handling(session: Session, mode: str, slug: str = "bayview-toyota") -> None:
    """Set who answers STOP/START/HELP on the rooftop's number (``carrier_keywords``)."""
    found = rooftop(session, slug)
    found.config = {**found.config, "carrier_keywords": mode}
    session.commit()


def customer_on(
    session: Session, e164: str, *, first: str, last: str, language: str = "en"
) -> Customer:
    """A customer linked to a phone (shared when the phone exists: a household)."""
    group = session.scalar(select(DealerGroup))
    assert group is not None
    phone = session.scalar(select(Phone).where(Phone.e164 == e164))
    if phone is None:
        phone = Phone(group_id=group.id, e164=e164, as_typed=e164, kind="mobile")
        session.add(phone)
    customer = Customer(group_id=group.id, first_name=first, last_name=last, language=language)
    session.add(customer)
    session.flush()
    session.add(CustomerPhone(customer_id=customer.id, phone_id=phone.id, is_primary=True))
    session.flush()
    return customer


def repair_order(
    session: Session,
    customer: Customer,
    *,
    ro_number: str,
    stage: str,
    model: tuple[int, str, str] = (2021, "Toyota", "RAV4"),
    slug: str = "bayview-toyota",
    promised_at: datetime | None = None,
    lines: list[tuple[str, str, int, str]] = (),  # type: ignore[assignment]
) -> RepairOrder:
    year, make, name = model
    vehicle = Vehicle(
        group_id=customer.group_id, year=year, make=make, model=name, customer_id=customer.id
    )
    session.add(vehicle)
    session.flush()
    order = RepairOrder(
        rooftop_id=rooftop(session, slug).id,
        ro_number=ro_number,
        customer_id=customer.id,
        vehicle_id=vehicle.id,
        advisor_ref="A7",
        advisor_name="Dana Ruiz",
        raw_status=stage.upper(),
        stage=stage,
        opened_at=OPEN_HOURS - timedelta(hours=3),
        promised_at=promised_at,
        content_hash="x",
    )
    session.add(order)
    session.flush()
    for code, (op, description, cents, status) in zip("ABCDEFG", lines, strict=False):
        session.add(
            RoLine(
                repair_order_id=order.id,
                line_code=code,
                op_code=op,
                description=description,
                amount_cents=cents,
                status=status,
            )
        )
    session.flush()
    return order


def sent_before(
    session: Session,
    order: RepairOrder,
    *,
    template: str = "awaiting_approval",
    ago: timedelta = timedelta(minutes=30),
) -> OutboundMessage:
    """A text Pitwall sent about `order` (by default its approval request) `ago` before now."""
    phone_link = session.scalar(
        select(CustomerPhone).where(CustomerPhone.customer_id == order.customer_id)
    )
    assert phone_link is not None
    stage = template if template in ("awaiting_approval", "awaiting_parts", "checked_in") else None
    message = OutboundMessage(
        rooftop_id=order.rooftop_id,
        customer_id=order.customer_id,
        phone_id=phone_link.phone_id,
        repair_order_id=order.id,
        kind="followup" if template == "followup" else "status",
        purpose="marketing" if template == "followup" else "status",
        stage=stage,
        template=f"{template}.en",
        dedupe_key=f"test:{order.id}:{template}:{next(_sids)}",
        channel="sms",
        to_address="+1",
        body=f"({template})",
        state="delivered",
        created_at=OPEN_HOURS - ago,
        sent_at=OPEN_HOURS - ago,
    )
    session.add(message)
    session.flush()
    return message


@pytest.fixture
def api_token(database: Database, client: TestClient) -> str:
    with database.transaction() as session:
        group = session.scalar(select(DealerGroup))
        assert group is not None
        return create_api_token(session, group_id=group.id, name="tests", role="director")


def message_xml(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return str(response.text)


def reply_of(response) -> str | None:  # type: ignore[no-untyped-def]
    """The text of the TwiML reply's <Message>, None when Pitwall says nothing."""
    root = ElementTree.fromstring(message_xml(response))
    assert root.tag == "Response"
    message = root.find("Message")
    return None if message is None else message.text
