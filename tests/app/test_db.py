"""Engines: PostgreSQL connections give up on silent hosts; SQLite runs WAL with FKs."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db import make_engine


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


def test_sqlite_runs_wal_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    engine.dispose()
