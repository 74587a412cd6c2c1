"""Fast bulk seeding for the benchmarks: set-based SQL or COPY, never row-by-row ORM.

* `bulk_insert`: rows computed in Python (hashes must match what the app computes)
  go in by COPY on PostgreSQL and by executemany on SQLite, with explicit ids.
* `seed_customers`: a million customers and their phones in a few set-based
  `INSERT ... SELECT generate_series` statements (PostgreSQL only).

Phone numbers are a pure function of an index (`phone_e164`), so a load generator
can pick "random known phones" without asking the database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, text

from app.db import utcnow

# 415-200-0000 onward: valid US numbers (exchanges 200-999), 8 million of them.
PHONE_BASE = 2_000_000


def phone_e164(index: int) -> str:
    """The E.164 number of seeded phone `index` (0-based)."""
    return f"+1415{PHONE_BASE + index:07d}"


def bulk_insert(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, ids included) as fast as the backend allows."""
    if not rows:
        return
    columns = list(rows[0])
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        names = ", ".join(f'"{c}"' for c in columns)
        statement = f'COPY "{table.name}" ({names}) FROM STDIN'
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([_copy_value(row[c]) for c in columns])
    else:
        connection.execute(table.insert(), list(rows))


def _copy_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    return value


def reset_sequences(connection: Connection, tables: Iterable[Table]) -> None:
    """After inserting explicit ids, move each PostgreSQL id sequence past them."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'COALESCE((SELECT max(id) FROM "{table.name}"), 0) + 1, false)'
            )
        )


def seed_customers(
    connection: Connection,
    *,
    group_id: int,
    customers: int,
    extra_phones: int,
    now: datetime | None = None,
) -> dict[str, float]:
    """`customers` customers, one phone each, plus `extra_phones` second phones (PostgreSQL).

    Customer i (1-based) has phone index i-1; the first `extra_phones` customers also
    have phone index `customers + i - 1`. Returns seconds per step.
    """
    now = now or utcnow()
    timings: dict[str, float] = {}
    phones = customers + extra_phones
    steps = {
        "customers": (
            "INSERT INTO customer (id, group_id, first_name, last_name, language, "
            "created_at, updated_at) "
            "SELECT i, :g, 'First' || i, 'Last' || i, 'en', :now, :now "
            "FROM generate_series(1, :n) AS i",
            {"n": customers},
        ),
        "phones": (
            "INSERT INTO phone (id, group_id, e164, as_typed, kind, textable, created_at) "
            "SELECT i, :g, '+1415' || lpad((:base + i - 1)::text, 7, '0'), "
            "'+1415' || lpad((:base + i - 1)::text, 7, '0'), 'mobile', true, :now "
            "FROM generate_series(1, :n) AS i",
            {"n": phones, "base": PHONE_BASE},
        ),
        "links": (
            "INSERT INTO customer_phone (customer_id, phone_id, kind, is_primary) "
            "SELECT i, i, 'mobile', true FROM generate_series(1, :n) AS i "
            "UNION ALL "
            "SELECT i, :n + i, 'mobile', false FROM generate_series(1, :extra) AS i",
            {"n": customers, "extra": extra_phones},
        ),
    }
    for name, (sql, params) in steps.items():
        started = time.perf_counter()
        connection.execute(text(sql), {"g": group_id, "now": now, **params})
        timings[name] = time.perf_counter() - started
    started = time.perf_counter()
    for table in ("customer", "phone"):
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :v, false)"),
            {"v": (customers if table == "customer" else phones) + 1},
        )
    timings["sequences"] = time.perf_counter() - started
    return timings


def seed_open_repair_orders(
    connection: Connection,
    *,
    rooftop_id: int,
    group_id: int,
    count: int,
    every: int,
    now: datetime | None = None,
) -> float:
    """`count` open ROs (with a vehicle and a pending line) for customers 1, 1+every, ...

    Returns the seconds it took (PostgreSQL, set-based).
    """
    now = now or utcnow()
    started = time.perf_counter()
    connection.execute(
        text(
            "INSERT INTO vehicle (id, group_id, vin, year, make, model, customer_id) "
            "SELECT i, :g, 'JTMBENCH' || lpad(i::text, 9, '0'), 2021, 'Toyota', "
            "CASE i % 3 WHEN 0 THEN 'RAV4' WHEN 1 THEN 'Camry' ELSE 'Tacoma' END, "
            "(i - 1) * :every + 1 FROM generate_series(1, :n) AS i"
        ),
        {"g": group_id, "n": count, "every": every},
    )
    connection.execute(
        text(
            "INSERT INTO repair_order (id, rooftop_id, ro_number, customer_id, vehicle_id, "
            "advisor_ref, advisor_name, raw_status, stage, opened_at, promised_at, "
            "content_hash, missing_polls, created_at, updated_at) "
            "SELECT i, :r, 'B' || lpad(i::text, 7, '0'), (i - 1) * :every + 1, i, 'A7', "
            "'Dana Ruiz', CASE WHEN i % 4 = 0 THEN 'WAITAPPR' ELSE 'WIP' END, "
            "CASE WHEN i % 4 = 0 THEN 'awaiting_approval' ELSE 'in_repair' END, "
            ":now - interval '3 hours', :now + interval '4 hours', md5(i::text), 0, :now, :now "
            "FROM generate_series(1, :n) AS i"
        ),
        {"r": rooftop_id, "n": count, "every": every, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO ro_line (id, repair_order_id, line_code, op_code, description, "
            "amount_cents, status, status_changed_at) "
            "SELECT i, i, 'A', 'BRAKES', 'Front brake pads', 28995, "
            "CASE WHEN i % 4 = 0 THEN 'pending' ELSE 'approved' END, :now "
            "FROM generate_series(1, :n) AS i"
        ),
        {"n": count, "now": now},
    )
    for table in ("vehicle", "repair_order", "ro_line"):
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :v, false)"),
            {"v": count + 1},
        )
    return time.perf_counter() - started


def seed_message_history(
    connection: Connection,
    *,
    rooftop_id: int,
    group_id: int,
    customers: int,
    messages: int,
    tasks: int,
    now: datetime | None = None,
) -> float:
    """A live group's past texts: `messages` answered inbound texts over the last 90 days
    from customers spread over all `customers`, one in a thousand still asking "which
    vehicle?", and `tasks` inbox tasks about them, 95% done (PostgreSQL, set-based).

    Without a history the texts and tasks tables start empty, and PostgreSQL plans the
    first statements on them for empty tables. Returns the seconds it took.
    """
    now = now or utcnow()
    started = time.perf_counter()
    # Customer c (1-based) writes from phone c - 1, as in `seed_customers`.
    connection.execute(
        text(
            "INSERT INTO inbound_message (id, provider_sid, group_id, rooftop_id, channel, "
            "from_address, to_address, body, num_media, customer_id, phone_id, intent, "
            "reply_body, pending_choices, handled_at, raw, received_at) "
            "SELECT i, 'SM' || md5('history' || i), :g, :r, 'sms', "
            "'+1415' || lpad((:base + c - 1)::text, 7, '0'), '+14155550100', "
            "'Is my car ready?', 0, c, c, 'status_question', 'It is being repaired.', "
            "CASE WHEN i % 1000 = 0 THEN '[{\"label\": \"RAV4\"}]'::json END, "
            ":now - (i % 129600) * interval '1 minute', '{}'::json, "
            ":now - (i % 129600) * interval '1 minute' "
            "FROM (SELECT i, 1 + (i * 7919) % :customers AS c "
            "      FROM generate_series(1, :n) AS i) AS picked"
        ),
        {"g": group_id, "r": rooftop_id, "base": PHONE_BASE, "customers": customers,
         "n": messages, "now": now},
    )  # fmt: skip
    connection.execute(
        text(
            "INSERT INTO task (id, rooftop_id, customer_id, inbound_message_id, kind, summary, "
            "state, created_at, done_at) "
            "SELECT i, :r, m.customer_id, m.id, 'needs_reply', 'Past question', "
            "CASE WHEN i % 20 = 0 THEN 'open' ELSE 'done' END, m.received_at, "
            "CASE WHEN i % 20 = 0 THEN NULL ELSE m.received_at + interval '1 hour' END "
            "FROM generate_series(1, :n) AS i JOIN inbound_message m ON m.id = i * :step"
        ),
        {"r": rooftop_id, "n": tasks, "step": max(1, messages // tasks)},
    )
    for table in ("inbound_message", "task"):
        connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
            )
        )
    return time.perf_counter() - started
