"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.models import Base
from tests.db_support import downgrade, upgrade


def test_upgrade_downgrade_upgrade_round_trip(database_url: str) -> None:
    downgrade(database_url, "base")
    engine = create_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(database_url, "head")
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations; run `make migration`: {diff}"


def test_a_populated_database_upgrades_from_the_first_release_to_head(database_url: str) -> None:
    """Dealers' databases only move forward: rows written at 0001 survive every revision."""
    downgrade(database_url, "base")
    upgrade(database_url, "0001")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dealer_group (id, name, default_region, recovery_window_days,"
                " created_at) VALUES (1, 'Bayview', 'US', 180, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customer (id, group_id, first_name, language, created_at,"
                " updated_at) VALUES (7, 1, 'Sam', 'en', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO inbound_message (id, provider_sid, channel, from_address,"
                " to_address, body, num_media, customer_id, intent, received_at)"
                " VALUES (3, 'SM1', 'sms', '+14155550142', '+14155550100',"
                " 'is my car ready?', 0, 7, 'status_question', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(database_url, "head")
    with engine.connect() as conn:
        customer = conn.execute(
            text("SELECT first_name, language, texts_language FROM customer WHERE id = 7")
        ).one()
        message = conn.execute(
            text(
                "SELECT body, intent, intent_label, intent_confidence, corrected_intent"
                " FROM inbound_message WHERE id = 3"
            )
        ).one()
        approvals = conn.execute(text("SELECT count(*) FROM approval")).scalar_one()
    engine.dispose()
    assert tuple(customer) == ("Sam", "en", None)
    assert tuple(message) == ("is my car ready?", "status_question", None, None, None)
    assert approvals == 0
