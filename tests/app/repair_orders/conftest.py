"""Shared fixtures for repair-order tests: the sample dealer, a scripted DMS, a write counter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from app.dealers.models import Rooftop
from app.deps import Database
from integrations.dms.base import DmsError, DmsPage, RawRecord, RepairOrderRecord
from integrations.dms.rest import normalise_bridge_record
from tests.integrations.dms.conftest import bridge_record
from tests.support import load_sample_dealer

__all__ = ["NOW", "ScriptedDms", "WriteCounter", "bridge_record", "rooftop_named"]

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)


@pytest.fixture
def dealer(database: Database) -> Database:
    """The sample dealer (bayview-toyota, bayview-ford) loaded."""
    load_sample_dealer(database)
    return database


def rooftop_named(session: Session, slug: str) -> Rooftop:
    return session.scalars(select(Rooftop).where(Rooftop.slug == slug)).one()


@dataclass
class ScriptedDms:
    """A DMS at the edge of the world: bridge-shaped records served from memory."""

    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    snapshot: bool = False
    known: dict[str, dict[str, Any]] = field(default_factory=dict)  # what fetch_one answers
    error: Exception | None = None
    kind: str = "rest"
    calls: list[datetime | None] = field(default_factory=list)
    acked: int = 0

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        self.calls.append(since)
        if self.error is not None:
            raise self.error
        for records in self.pages:
            yield DmsPage(
                records=[RawRecord(payload=r, ro_number=r.get("ro_number")) for r in records],
                ack=self._ack,
            )

    def _ack(self) -> None:
        self.acked += 1

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        return normalise_bridge_record(record.payload)

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        payload = self.known.get(ro_number)
        return None if payload is None else RawRecord(payload=payload, ro_number=ro_number)

    def check(self) -> None:
        if self.error is not None:
            raise DmsError(str(self.error))

    def close(self) -> None:
        pass


_WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


class WriteCounter:
    """Counts INSERT/UPDATE/DELETE statements (and executemany rows) per table on an engine,
    and keeps each one's text as it was sent."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tables: list[str] = []
        self.statements: list[str] = []

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        match = _WRITE.match(statement)
        if match:
            self.tables.append(match.group(2).lower())
            self.statements.append(statement)

    def __enter__(self) -> WriteCounter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def excluding(self, *tables: str) -> list[str]:
        return [t for t in self.tables if t not in tables]
