"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, inspect, text

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


def test_plans_and_groups_from_before_the_holdout_upgrade_without_a_draw(
    database_url: str,
) -> None:
    """0003: older plans read as followed with no draw (percent 0); every group gets its own key."""
    downgrade(database_url, "base")
    upgrade(database_url, "0002")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for group_id, name in ((1, "Bayview"), (2, "Harbor")):
            conn.execute(
                text(
                    "INSERT INTO dealer_group (id, name, default_region, recovery_window_days,"
                    " created_at) VALUES (:id, :name, 'US', 365, CURRENT_TIMESTAMP)"
                ),
                {"id": group_id, "name": name},
            )
        conn.execute(
            text(
                "INSERT INTO rooftop (id, group_id, slug, name, timezone, dms_kind, active, config,"
                " updated_at) VALUES (5, 1, 'bayview-toyota', 'Bayview Toyota',"
                " 'America/Los_Angeles', 'simulator', true, '{}', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO repair_order (id, rooftop_id, ro_number, raw_status, stage, opened_at,"
                " content_hash, missing_polls, created_at, updated_at) VALUES (9, 5, 'R1001',"
                " 'CLOSED', 'closed', CURRENT_TIMESTAMP, 'h', 0, CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO followup_plan (id, repair_order_id, rooftop_id, state, closed_at,"
                " created_at) VALUES (4, 9, 5, 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    upgrade(database_url, "head")
    with engine.connect() as conn:
        plan = conn.execute(
            text("SELECT state, holdout, holdout_percent FROM followup_plan WHERE id = 4")
        ).one()
        keys = list(
            conn.execute(text("SELECT holdout_key FROM dealer_group ORDER BY id")).scalars()
        )
    engine.dispose()
    assert (plan.state, bool(plan.holdout), plan.holdout_percent) == ("active", False, 0)
    assert all(len(key) == 64 and int(key, 16) >= 0 for key in keys)
    assert len(set(keys)) == 2


def test_logins_from_before_admin_editing_upgrade_without_a_name(database_url: str) -> None:
    """0005: existing logins keep working with no name or DMS advisor id; the audit log is empty."""
    downgrade(database_url, "base")
    upgrade(database_url, "0004")
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
                "INSERT INTO app_user (id, group_id, email, password_hash, role, active,"
                " created_at) VALUES (5, 1, 'dana@bayview.example', 'x', 'advisor', true,"
                " CURRENT_TIMESTAMP)"
            )
        )
    upgrade(database_url, "0005")
    with engine.begin() as conn:
        user = conn.execute(
            text("SELECT email, name, dms_advisor_id FROM app_user WHERE id = 5")
        ).one()
        conn.execute(
            text(
                "INSERT INTO admin_change (group_id, actor, at, subject, old_value, new_value)"
                " VALUES (1, 'admin@bayview.example', CURRENT_TIMESTAMP, 'user dana', NULL, 'x')"
            )
        )
        logged = conn.execute(text("SELECT count(*) FROM admin_change")).scalar_one()
    engine.dispose()
    upgrade(database_url, "head")
    assert tuple(user) == ("dana@bayview.example", None, None) and logged == 1


def test_repair_orders_from_before_the_customer_page_take_links_and_answers(
    database_url: str,
) -> None:
    """0004 only adds tables: existing ROs and lines stay as they were and can be linked to."""
    engine = _ro_awaiting_brakes_at(database_url, "0003")
    with engine.begin() as conn:
        line = conn.execute(
            text("SELECT description, amount_cents, status FROM ro_line WHERE id = 11")
        ).one()
        conn.execute(
            text(
                "INSERT INTO customer_link (id, token_hash, rooftop_id, repair_order_id,"
                " customer_id, purpose, created_at, open_count) VALUES (1, :hash, 5, 9, 7,"
                " 'status', CURRENT_TIMESTAMP, 0)"
            ),
            {"hash": "a" * 64},
        )
        conn.execute(
            text(
                "INSERT INTO customer_page_answer (id, rooftop_id, repair_order_id, customer_id,"
                " link_id, lines, approved_cents, declined_cents, language, answered_at) VALUES"
                " (1, 5, 9, 7, 1, '[]', 41200, 0, 'en', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customer_line_answer (ro_line_id, answer_id, choice, at)"
                " VALUES (11, 1, 'approve', CURRENT_TIMESTAMP)"
            )
        )
    downgrade(database_url, "0003")
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM ro_line WHERE id = 11")).scalar_one()
        tables = set(inspect(engine).get_table_names())
    engine.dispose()
    upgrade(database_url, "head")
    assert tuple(line) == ("Front brake pads", 41200, "pending")
    assert kept == 1 and "customer_link" not in tables


def test_lines_from_before_dms_notes_upgrade_with_none_and_take_one(database_url: str) -> None:
    """0006 adds ro_line.note: stored lines keep their columns and have no note until one comes."""
    engine = _ro_awaiting_brakes_at(database_url, "0005")
    with engine.begin() as conn:
        before = conn.execute(
            text("SELECT description, amount_cents, status, note FROM ro_line WHERE id = 11")
        ).one()
        conn.execute(text("UPDATE ro_line SET note = 'Pads at 3 mm' WHERE id = 11"))
        after = conn.execute(text("SELECT note FROM ro_line WHERE id = 11")).scalar_one()
    engine.dispose()
    assert tuple(before) == ("Front brake pads", 41200, "pending", None)
    assert after == "Pads at 3 mm"


def _ro_awaiting_brakes_at(database_url: str, revision: str) -> Engine:
    """A database built up to `revision` with RO 9 (`_insert_ro_awaiting_brakes`) in it, then
    upgraded to head; its engine (the caller disposes of it)."""
    downgrade(database_url, "base")
    upgrade(database_url, revision)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        _insert_ro_awaiting_brakes(conn)
    upgrade(database_url, "head")
    return engine


def _insert_ro_awaiting_brakes(conn: Connection) -> None:
    """A group, a rooftop, a customer and RO 9 waiting on approval of line 11 (brake pads)."""
    conn.execute(
        text(
            "INSERT INTO dealer_group (id, name, default_region, recovery_window_days,"
            " created_at) VALUES (1, 'Bayview', 'US', 365, CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO rooftop (id, group_id, slug, name, timezone, dms_kind, active, config,"
            " updated_at) VALUES (5, 1, 'bayview-toyota', 'Bayview Toyota',"
            " 'America/Los_Angeles', 'simulator', true, '{}', CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO customer (id, group_id, first_name, created_at, updated_at)"
            " VALUES (7, 1, 'Sam', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO repair_order (id, rooftop_id, ro_number, customer_id, raw_status,"
            " stage, opened_at, content_hash, missing_polls, created_at, updated_at) VALUES"
            " (9, 5, 'R1001', 7, 'WAITAPPR', 'awaiting_approval', CURRENT_TIMESTAMP, 'h', 0,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    conn.execute(
        text(
            "INSERT INTO ro_line (id, repair_order_id, line_code, op_code, description,"
            " amount_cents, status, status_changed_at) VALUES (11, 9, 'B', 'BRKPAD',"
            " 'Front brake pads', 41200, 'pending', CURRENT_TIMESTAMP)"
        )
    )


def test_repair_orders_from_before_write_back_take_a_queued_answer(database_url: str) -> None:
    """0007 only adds the dms_write queue: an RO stored before it can have answers queued."""
    engine = _ro_awaiting_brakes_at(database_url, "0006")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dms_write (rooftop_id, repair_order_id, ro_number, lines, source,"
                " state, attempts, next_attempt_at, created_at) VALUES (5, 9, 'R1001',"
                " '[]', 'page', 'pending', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        queued = conn.execute(text("SELECT ro_number, state FROM dms_write")).one()
        line = conn.execute(text("SELECT status FROM ro_line WHERE id = 11")).scalar_one()
    engine.dispose()
    assert tuple(queued) == ("R1001", "pending") and line == "pending"


def test_outbox_rows_from_before_the_wider_due_index_are_claimed_oldest_first(
    database_url: str,
) -> None:
    """0008 replaces the due index with (state, not_before, id): stored rows keep their
    places and the claim's order reads them oldest first, ties by id."""
    engine = _ro_awaiting_brakes_at(database_url, "0007")
    with engine.begin() as conn:
        rows = ((21, "2026-12-06 10:00"), (22, "2026-12-06 09:00"), (20, "2026-12-06 10:00"))
        for message_id, not_before in rows:
            conn.execute(
                text(
                    "INSERT INTO outbound_message (id, rooftop_id, customer_id, kind, purpose,"
                    " channel, body, state, not_before, attempt, dedupe_key, created_at,"
                    " updated_at) VALUES (:id, 5, 7, 'status', 'status', 'sms', 'Ready',"
                    " 'pending', :at, 0, :key, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": message_id, "at": not_before, "key": f"k{message_id}"},
            )
        order = (
            conn.execute(
                text(
                    "SELECT id FROM outbound_message WHERE state = 'pending'"
                    " ORDER BY not_before, id"
                )
            )
            .scalars()
            .all()
        )
        indexed = inspect(conn).get_indexes("outbound_message")
    engine.dispose()
    assert order == [22, 20, 21]
    due = next(index for index in indexed if index["name"] == "ix_outbound_message_due")
    assert due["column_names"] == ["state", "not_before", "id"]
