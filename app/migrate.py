"""Run the Alembic migrations shipped with Pitwall."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    return config


def upgrade_to_head(url: str) -> None:
    """`alembic upgrade head` on this database."""
    command.upgrade(alembic_config(url), "head")


def schema_status(engine: Engine, url: str) -> tuple[str | None, str]:
    """(current revision, head revision): equal when the schema is up to date."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head() or ""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
