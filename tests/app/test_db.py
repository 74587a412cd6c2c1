"""Engines: PostgreSQL connections give up on silent hosts; SQLite runs WAL with FKs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from app import db
from app.db import Database, make_engine, make_session_factory


@pytest.mark.postgres_only
def test_postgres_connections_time_out_and_keep_alive(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        dsn = conn.connection.dbapi_connection.info.dsn  # type: ignore[union-attr]
    engine.dispose()
    for setting in ("connect_timeout=5", "keepalives=1", "tcp_user_timeout=60000"):
        assert setting in dsn


@pytest.mark.postgres_only
def test_a_setting_in_the_url_wins(database_url: str) -> None:
    engine = make_engine(database_url + "?connect_timeout=2")
    with engine.connect() as conn:
        dsn = conn.connection.dbapi_connection.info.dsn  # type: ignore[union-attr]
    engine.dispose()
    assert "connect_timeout=2" in dsn and "connect_timeout=5" not in dsn


@pytest.mark.postgres_only
def test_a_connection_that_died_while_idle_in_the_pool_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, admin = make_engine(database_url, pool_size=1), make_engine(database_url)
    with engine.connect() as conn:
        first = conn.scalar(text("SELECT pg_backend_pid()"))
    with admin.connect() as conn:  # the server restarts, say: the pooled connection is gone
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle long enough
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_backend_pid()")) not in (None, first)
    engine.dispose()
    admin.dispose()


@pytest.mark.postgres_only
def test_a_busy_pool_hands_out_connections_without_a_ping(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url, pool_size=1)
    pings: list[object] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real_ping(c))
    for _ in range(5):  # back within a second each time
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1
    engine.dispose()


def test_sqlite_runs_wal_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    engine.dispose()


def test_sqlite_units_of_work_reuse_an_open_connection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A connection per unit of work paid a connect, its PRAGMAs and a WAL checkpoint on
    close each time; pooled, the WAL stays and a second unit of work connects nothing."""
    path = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{path}")
    connects: list[object] = []
    event.listen(engine, "connect", lambda *_: connects.append(1))
    for n in range(3):
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
    assert len(connects) == 1
    assert (tmp_path / "x.db-wal").exists()  # not checkpointed away after every unit
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3
    engine.dispose()


def test_one_statement_is_its_own_transaction(database_url: str) -> None:
    """A record of sends is one UPDATE: on PostgreSQL it runs in autocommit (no BEGIN
    and COMMIT round trips around it), and the pooled connection goes back to the next
    unit of work transactional; a statement that fails writes nothing and leaves the
    connection fit for use."""
    engine = make_engine(database_url, pool_size=1)  # every unit of work on one connection
    database = Database(engine=engine, sessions=make_session_factory(engine))
    postgres = engine.dialect.name == "postgresql"
    slot = datetime(2026, 1, 1, tzinfo=UTC)
    insert_pace = text("INSERT INTO sender_pace (sender, next_slot_at) VALUES (:s, :t)")
    with database.one_statement() as connection:
        if postgres:
            assert getattr(connection.connection.dbapi_connection, "autocommit", None) is True
        connection.execute(insert_pace, {"s": "+14155550100", "t": slot})
    with pytest.raises(IntegrityError), database.one_statement() as connection:
        connection.execute(insert_pace, {"s": "+14155550100", "t": slot})
    with database.transaction() as session:
        if postgres:
            dbapi = session.connection().connection.dbapi_connection
            assert getattr(dbapi, "autocommit", None) is False
        assert session.scalar(text("SELECT count(*) FROM sender_pace")) == 1
    engine.dispose()
