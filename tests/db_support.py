"""Test databases: one per pytest worker, migrated once with Alembic, emptied per test.

PITWALL_TEST_DATABASE_URL selects the backend: `sqlite` (a migrated template file
copied per test) or a PostgreSQL URL (a database per xdist worker, truncated per test).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.models import Base

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def backend_url() -> str:
    return os.environ.get("PITWALL_TEST_DATABASE_URL", "sqlite")


def is_postgres_run() -> bool:
    return backend_url().startswith("postgresql")


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def create_pg_database(base_url: str, name: str) -> str:
    """(Re)create database `name` on the server of `base_url`; return its URL."""
    url = make_url(base_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(base_url: str, name: str) -> None:
    admin = create_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class TestDatabase:
    """A migrated database this worker owns, reset to empty between tests."""

    def __init__(self, worker: str, tmp_root: Path) -> None:
        self.worker = worker
        if is_postgres_run():
            # Unique per pytest run, so parallel runs on one server never share a database.
            run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
            self.name = f"pitwall_t_{run[:10]}_{worker}"
            self.url = create_pg_database(backend_url(), self.name)
            upgrade(self.url)
            self._template: Path | None = None
        else:
            self._template = tmp_root / f"template_{worker}.db"
            upgrade(f"sqlite:///{self._template}")
            self._live = tmp_root / f"live_{worker}.db"
            self.url = f"sqlite:///{self._live}"

    def drop(self) -> None:
        if self._template is None:
            drop_pg_database(backend_url(), self.name)

    def reset(self) -> None:
        """Empty every table (PostgreSQL) or copy a fresh migrated file (SQLite)."""
        if self._template is None:
            engine = create_engine(self.url)
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            engine.dispose()
            return
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self._live}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self._template, self._live)
