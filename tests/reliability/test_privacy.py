"""Erasing a customer: their personal data gone everywhere, the reports' counts unchanged.
The consent ledger exports as CSV for an audit."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.auth.service import create_api_token
from app.config import Settings
from app.conversations.models import Call, InboundMessage, Task
from app.conversations.reports import conversations_report
from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.customers.privacy import CONSENT_COLUMNS, ERASED, erase_customer
from app.db import utcnow
from app.dealers.models import DealerGroup, Rooftop
from app.deps import Database
from app.main import create_app
from app.messaging.models import OutboundMessage
from app.repair_orders.models import RepairOrder
from app.reports.service import declined_recovery
from scripts.simulate_month import START, simulate
from tests.support import ServedApp

SINCE = START.date() - timedelta(days=1)


def reports(session: Session) -> tuple[dict[str, int], list[dict[str, object]]]:
    group = session.scalars(select(DealerGroup)).one()
    rooftops = list(session.scalars(select(Rooftop).order_by(Rooftop.id)))
    recovery = declined_recovery(session, group=group, rooftops=rooftops, since=SINCE)
    totals = {
        name: getattr(recovery, name)
        for name in (
            "declined_cents",
            "followed_up_cents",
            "recovered_cents",
            "recovered_after_followup_cents",
        )
    }
    totals["lines"] = len(recovery.lines)
    conversations = [
        conversations_report(session, rooftop=r, since=SINCE, now=utcnow())["totals"]
        for r in rooftops
    ]
    return totals, conversations


def personal_traces(
    session: Session, customer_id: int, numbers: set[str], names: set[str]
) -> list[str]:
    """Every place a name or an own number of the customer still shows."""
    found: list[str] = []
    customer = session.get(Customer, customer_id)
    assert customer is not None
    if customer.first_name or customer.last_name or customer.email:
        found.append("customer row")
    if session.scalars(select(CustomerRef).where(CustomerRef.customer_id == customer_id)).all():
        found.append("customer_ref")
    texts = [
        *session.scalars(
            select(OutboundMessage.body).where(OutboundMessage.customer_id == customer_id)
        ),
        *session.scalars(
            select(InboundMessage.body).where(InboundMessage.customer_id == customer_id)
        ),
        *session.scalars(
            select(InboundMessage.reply_body).where(InboundMessage.customer_id == customer_id)
        ),
        *session.scalars(select(Task.summary).where(Task.customer_id == customer_id)),
    ]
    if any(t not in (None, ERASED) for t in texts):
        found.append("message bodies / task summaries")
    for number in numbers:
        where = [
            (OutboundMessage, OutboundMessage.to_address),
            (InboundMessage, InboundMessage.from_address),
            (Call, Call.from_address),
        ]
        for model, column in where:
            hits = session.scalar(
                select(func.count())
                .select_from(model)
                .where(column.in_([number, f"whatsapp:{number}"]))
            )
            if hits:
                found.append(f"{model.__tablename__}.{column.key} = {number}")
        phone = session.scalars(select(Phone).where(Phone.e164 == number)).first()
        if phone is not None:
            opted_out = (
                session.scalars(
                    select(Consent.action)
                    .where(Consent.phone_id == phone.id)
                    .order_by(Consent.id.desc())
                ).first()
                == "revoked"
            )
            if not opted_out:
                found.append(f"phone {number}")
    for name in names:
        like = f"%{name}%"
        hits = session.scalar(
            select(func.count()).select_from(Task).where(Task.summary.like(like))
        ) + session.scalar(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.customer_id == customer_id, OutboundMessage.body.like(like))
        )
        if hits:
            found.append(f"name {name!r} in texts")
    return found


def test_erasing_customers_leaves_no_trace_and_the_reports_unchanged(database: Database) -> None:
    simulate(database, seed=3, days=10, tick_hours=3)
    with database.transaction() as session:
        before = reports(session)
        # Customers with the most history: messages both ways, follow-ups, recoveries.
        busiest = session.execute(
            select(OutboundMessage.customer_id, func.count())
            .where(OutboundMessage.customer_id.is_not(None))
            .group_by(OutboundMessage.customer_id)
            .order_by(func.count().desc(), OutboundMessage.customer_id)
            .limit(8)
        ).all()
        victims = [cid for cid, _ in busiest]
        assert len(victims) == 8
        people = {}
        for cid in victims:
            customer = session.get(Customer, cid)
            assert customer is not None
            own = set(
                session.scalars(
                    select(Phone.e164)
                    .join(CustomerPhone, CustomerPhone.phone_id == Phone.id)
                    .where(CustomerPhone.customer_id == cid)
                    .where(
                        ~Phone.id.in_(
                            select(CustomerPhone.phone_id).where(CustomerPhone.customer_id != cid)
                        )
                    )
                )
            )
            names = {n for n in (customer.first_name, customer.last_name) if n and len(n) > 3}
            people[cid] = ({n for n in own if n}, names)
            assert personal_traces(session, cid, *people[cid])  # there was something to erase
        other = session.scalars(
            select(Customer.id).where(Customer.id.not_in(victims)).order_by(Customer.id)
        ).first()
        assert other is not None
        other_name = session.get(Customer, other).first_name  # type: ignore[union-attr]
        ros = session.scalar(select(func.count()).select_from(RepairOrder))
    for cid in victims:
        with database.transaction() as session:
            report = erase_customer(session, customer_id=cid, at=utcnow())
            assert report.outbound_erased > 0
    with database.transaction() as session:  # twice is harmless
        erase_customer(session, customer_id=victims[0], at=utcnow())
    with database.transaction() as session:
        for cid in victims:
            assert personal_traces(session, cid, *people[cid]) == [], cid
        assert reports(session) == before
        assert session.scalar(select(func.count()).select_from(RepairOrder)) == ros
        assert session.get(Customer, other).first_name == other_name  # type: ignore[union-attr]


def test_a_number_that_said_stop_is_kept_bare_and_a_household_phone_stays(
    database: Database,
) -> None:
    from tests.support import load_sample_dealer

    load_sample_dealer(database)
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        sam = Customer(group_id=group.id, first_name="Sam", last_name="Lee", email="sam@x.example")
        pat = Customer(group_id=group.id, first_name="Pat", last_name="Lee")
        home = Phone(group_id=group.id, e164="+14155550142", as_typed="(415) 555-0142")
        own = Phone(group_id=group.id, e164="+14155550143", as_typed="415 555 0143")
        gone = Phone(group_id=group.id, e164="+14155550144", as_typed="415-555-0144")
        session.add_all([sam, pat, home, own, gone])
        session.flush()
        for customer, phone in ((sam, home), (pat, home), (sam, own), (sam, gone)):
            session.add(CustomerPhone(customer_id=customer.id, phone_id=phone.id))
        for action in ("granted", "revoked"):
            session.add(
                Consent(
                    group_id=group.id,
                    phone_id=own.id,
                    customer_id=sam.id,
                    channel="sms",
                    purpose="status",
                    action=action,
                    source="keyword",
                    detail="STOP please Sam",
                )
            )
        session.add(
            Consent(
                group_id=group.id,
                phone_id=gone.id,
                customer_id=sam.id,
                channel="sms",
                purpose="status",
                action="granted",
                source="dms:bayview-toyota",
            )
        )
        ids = (sam.id, pat.id, home.id, own.id, gone.id)
    sam_id, pat_id, home_id, own_id, gone_id = ids
    with database.transaction() as session:
        report = erase_customer(session, customer_id=sam_id, at=utcnow())
    assert (report.phones_deleted, report.phones_kept_for_opt_out) == (1, 1)
    with database.transaction() as session:
        assert session.get(Phone, gone_id) is None
        kept = session.get(Phone, own_id)
        assert kept is not None and kept.as_typed == "+14155550143"
        ledger = session.scalars(select(Consent).where(Consent.phone_id == own_id)).all()
        assert [c.action for c in ledger] == ["granted", "revoked"]
        assert all(c.customer_id is None and c.detail is None for c in ledger)
        assert session.get(Phone, home_id) is not None  # Pat still uses it
        links = session.scalars(
            select(CustomerPhone.customer_id).where(CustomerPhone.phone_id == home_id)
        ).all()
        assert links == [pat_id]


def test_consent_ledger_exports_as_csv_masked_or_full(
    database: Database, settings: Settings, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    simulate(database, seed=3, days=4, tick_hours=6)
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        phone = session.scalars(select(Phone).where(Phone.e164.is_not(None))).first()
        assert phone is not None
        session.add(
            Consent(
                group_id=group.id,
                phone_id=phone.id,
                channel="sms",
                purpose="marketing",
                action="revoked",
                source="keyword",
                detail='=HYPERLINK("http://x")',
            )
        )
        total = session.scalar(select(func.count()).select_from(Consent))
        director = create_api_token(session, group_id=group.id, name="d", role="director")
        toyota = session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-toyota")).one()
        advisor = create_api_token(
            session, group_id=group.id, name="a", role="advisor", rooftops=[toyota]
        )
    with (
        ServedApp(create_app(settings, database=database)) as served,
        httpx.Client(base_url=served.url) as client,
    ):
        auth = {"Authorization": f"Bearer {director}"}
        masked = client.get("/api/v1/consent.csv", headers=auth)
        full = client.get("/api/v1/consent.csv?full_numbers=true", headers=auth)
        one = client.get("/api/v1/consent.csv?rooftop=bayview-toyota", headers=auth)
        assert client.get("/api/v1/consent.csv").status_code == 401
        refused = client.get(
            "/api/v1/consent.csv?rooftop=bayview-toyota",
            headers={"Authorization": f"Bearer {advisor}"},
        )
        other = client.get("/api/v1/consent.csv?rooftop=harbor-honda", headers=auth)
    assert refused.status_code == 404 and other.status_code == 404
    rows = list(csv.reader(io.StringIO(masked.text)))
    assert tuple(rows[0]) == CONSENT_COLUMNS
    assert len(rows) - 1 == total > 1
    assert all(r[1].endswith("****") for r in rows[1:])
    full_rows = list(csv.reader(io.StringIO(full.text)))
    assert any(r[1] == phone.e164 for r in full_rows[1:])
    assert [r[6] for r in full_rows[1:] if "HYPERLINK" in r[6]] == ['\'=HYPERLINK("http://x")']
    assert 1 < len(list(csv.reader(io.StringIO(one.text)))) <= len(rows)

    # The CLI prints the same file.
    from app.customers.cli import consent_app

    monkeypatch.setenv("PITWALL_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(consent_app, ["export", "--full-numbers"])
    assert result.exit_code == 0, result.output
    assert result.output.replace("\r\n", "\n") == full.text.replace("\r\n", "\n")


def test_erase_over_the_api_is_for_admins_of_the_group_and_the_cli_erases(
    database: Database, settings: Settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from app.customers.cli import customers_app
    from app.customers.views import router
    from tests.support import load_sample_dealer

    load_sample_dealer(database)
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        ids = []
        for name in ("Ann", "Bob"):
            customer = Customer(group_id=group.id, first_name=name, last_name="Lee")
            session.add(customer)
            session.flush()
            ids.append(customer.id)
        admin = create_api_token(session, group_id=group.id, name="a", role="admin")
        director = create_api_token(session, group_id=group.id, name="d", role="director")
        other_group = DealerGroup(name="Harbor Motors")
        session.add(other_group)
        session.flush()
        stranger = create_api_token(session, group_id=other_group.id, name="s", role="admin")
    app = create_app(settings, database=database)
    if not any(
        getattr(r, "path", "") == "/api/v1/customers/{customer_id}/erase" for r in app.routes
    ):
        app.include_router(router)
    with ServedApp(app) as served, httpx.Client(base_url=served.url) as client:
        url = f"/api/v1/customers/{ids[0]}/erase"
        assert client.post(url).status_code == 401
        for token in (director, stranger):
            assert client.post(url, headers={"Authorization": f"Bearer {token}"}).status_code == 404
        with database.transaction() as session:
            assert session.get(Customer, ids[0]).first_name == "Ann"  # type: ignore[union-attr]
        done = client.post(url, headers={"Authorization": f"Bearer {admin}"})
        assert done.status_code == 200 and done.json()["customer_id"] == ids[0]
    monkeypatch.setenv("PITWALL_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(customers_app, ["erase", "--id", str(ids[1]), "--yes"])
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(customers_app, ["erase", "--id", "999999", "--yes"])
    assert missing.exit_code == 2 and "no customer 999999" in missing.output
    with database.transaction() as session:
        names = session.scalars(select(Customer.first_name).where(Customer.id.in_(ids))).all()
        assert names == [None, None]
        assert (
            session.scalar(
                select(func.count())
                .select_from(Customer)
                .where(or_(Customer.erased_at.is_not(None)))
            )
            == 2
        )
