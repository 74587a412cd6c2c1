"""The director's delivery figures count what customers did, not what the DMS said."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.customers.models import Consent, Customer, Phone
from app.db import utcnow
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.web.report_queries import delivery_stats
from tests.support import load_sample_dealer


def test_opt_out_rate_counts_stop_replies_among_phones_texted(database: Database) -> None:
    load_sample_dealer(database)
    now = utcnow()
    with database.transaction() as session:
        rooftop = session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-toyota")).one()
        group_id = rooftop.group_id
        phones = []
        for n in range(4):
            customer = Customer(group_id=group_id, first_name=f"C{n}")
            phone = Phone(group_id=group_id, e164=f"+1415555014{n}", as_typed="x")
            session.add_all([customer, phone])
            session.flush()
            phones.append(phone)
            session.add(
                OutboundMessage(
                    rooftop_id=rooftop.id,
                    customer_id=customer.id,
                    phone_id=phone.id,
                    kind="status",
                    purpose="status",
                    dedupe_key=f"t:{n}",
                    channel="sms",
                    body="hi",
                    state="delivered",
                    sent_at=now,
                )
            )

        def revoke(phone: Phone, source: str, purpose: str = "status") -> None:
            session.add(
                Consent(
                    group_id=group_id,
                    phone_id=phone.id,
                    channel="sms",
                    purpose=purpose,
                    action="revoked",
                    source=source,
                    at=now,
                )
            )

        revoke(phones[0], "keyword")  # replied STOP: an opt-out
        revoke(phones[0], "keyword", "marketing")  # the same person, counted once
        revoke(phones[1], "twilio:21610")  # the carrier says they opted out
        revoke(phones[2], "dms:bayview-toyota", "marketing")  # never gave marketing consent
        stranger = Phone(group_id=group_id, e164="+14155550199", as_typed="x")
        session.add(stranger)
        session.flush()
        revoke(stranger, "keyword")  # never texted by these rooftops

    with database.sessions() as session:
        rooftops = list(session.scalars(select(Rooftop).where(Rooftop.slug == "bayview-toyota")))
        stats = delivery_stats(
            session, group_id=group_id, rooftops=rooftops, since=now - timedelta(days=1)
        )
    assert (stats.phones_texted, stats.opt_outs) == (4, 2)
    assert stats.opt_out_rate == 0.5
    assert stats.delivered == 4 and stats.delivery_rate == 1.0
