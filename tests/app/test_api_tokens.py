"""API tokens: stored hashed; using one records when, without a write on every call."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select

from app.auth.models import ApiToken
from app.auth.service import create_api_token, principal_for_token
from app.db import utcnow
from app.dealers.models import DealerGroup
from app.deps import Database
from tests.support import load_sample_dealer


def test_last_used_is_recorded_at_most_once_a_minute(database: Database) -> None:
    load_sample_dealer(database)
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        token = create_api_token(session, group_id=group.id, name="bi", role="director")
    start = utcnow()
    with time_machine.travel(start, tick=False):
        with database.transaction() as session:
            assert principal_for_token(session, token) is not None
        with (
            time_machine.travel(start + timedelta(seconds=30), tick=False),
            database.transaction() as session,
        ):
            principal_for_token(session, token)
            assert not session.dirty  # nothing to write within the minute
        with (
            time_machine.travel(start + timedelta(minutes=2), tick=False),
            database.transaction() as session,
        ):
            principal_for_token(session, token)
    with database.sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.last_used_at == start + timedelta(minutes=2)
        assert token not in row.token_hash  # only the hash is stored


def test_a_wrong_or_revoked_token_is_nobody(database: Database) -> None:
    load_sample_dealer(database)
    with database.transaction() as session:
        group = session.scalars(select(DealerGroup)).one()
        token = create_api_token(session, group_id=group.id, name="bi", role="director")
    with database.transaction() as session:
        assert principal_for_token(session, token + "x") is None
        session.scalars(select(ApiToken)).one().revoked_at = utcnow()
    with database.transaction() as session:
        assert principal_for_token(session, token) is None
