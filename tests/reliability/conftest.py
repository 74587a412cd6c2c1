"""Fixtures for the reliability suite: reused from the domains' own test fixtures, plus counters.

The outbound fixtures (shop, sandbox, gateway, dispatch, clock, served_app) come from
tests/app/messaging; the web world (two groups, a login per role) from tests/app/web.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select

from app.models import Base
from tests.app.messaging.conftest import (  # noqa: F401  (fixtures)
    app_port,
    app_settings,
    clock,
    dispatch,
    gateway,
    sandbox,
    served_app,
    shop,
)
from tests.app.web.conftest import (  # noqa: F401  (fixtures)
    cheap_password_hashing,
    served,
    world,
)


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the schema."""
    with engine.connect() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in Base.metadata.sorted_tables
        }


# Sign-in bookkeeping a request may touch legitimately (a token used, a session seen).
BOOKKEEPING = frozenset({"last_used_at", "last_login_at", "last_seen_at", "expires_at"})


def table_fingerprint(engine: Engine, *tables: str) -> dict[str, Any]:
    """Every row of the named tables (or all), to prove a rejected request changed nothing."""
    names = set(tables) or {t.name for t in Base.metadata.sorted_tables}
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in names:
                columns = [c for c in table.columns if c.name not in BOOKKEEPING]
                rows = conn.execute(select(*columns)).all()
                out[table.name] = Counter(tuple(map(repr, row)) for row in rows)
    return out
