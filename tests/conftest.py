"""Fixtures every test can use: a real migrated database, settings, the app over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import make_engine, make_session_factory
from app.deps import Database
from tests.db_support import TestDatabase, is_postgres_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = ROOT / "config" / "sample-dealer.toml"

# Tests never reach Twilio's real edges, whatever the developer's shell says.
for _name in ("TWILIO_EDGE", "TWILIO_REGION"):
    os.environ.pop(_name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_postgres_run():
        return
    # PostgreSQL-only behaviour (SKIP LOCKED across processes) runs in the PostgreSQL pass.
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="runs in the PostgreSQL pass of make test"))


@pytest.fixture(scope="session")
def test_database(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[TestDatabase]:
    database = TestDatabase(worker_id, tmp_path_factory.mktemp("db"))
    yield database
    database.drop()


@pytest.fixture
def database_url(test_database: TestDatabase) -> str:
    test_database.reset()
    return test_database.url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture
def database(engine: Engine) -> Database:
    return Database(engine=engine, sessions=make_session_factory(engine))


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session for arranging and asserting; the test commits what it arranges."""
    with database.sessions() as session:
        yield session


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        PITWALL_DATABASE_URL=database_url,
        PITWALL_PUBLIC_URL="http://127.0.0.1:8000",
        PITWALL_SECRET_KEY="test-secret-key",
    )
