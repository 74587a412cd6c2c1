"""The claim's statements, built once per dialect, and the plain rows they read and write.

A claimed batch is read as tuples (`Claimed`, with its phone's facts joined in) and
its rooftops as `ClaimedRooftop`; nothing here builds ORM objects or SQL per batch:
the statements are built once (`claim_sql`) and take a batch's ids as one parameter
(`app/messaging/id_lists.py`).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Integer, Table, Text, bindparam, func, select, update
from sqlalchemy import cast as sql_cast

from app.config import RooftopConfig
from app.customers.models import Phone
from app.dealers.models import Rooftop
from app.messaging.facts import ReadFacts, claimed_facts
from app.messaging.id_lists import ids_value, in_ids
from app.messaging.models import OutboundMessage
from app.messaging.outcomes import VERDICT_STATES
from app.messaging.policies import Verdict
from app.messaging.service import AUTH_ALERT_KEY
from app.ops.models import Alert


class Claimed(NamedTuple):
    """One claimed row: what the policies and the send read, with its phone's facts."""

    id: int
    rooftop_id: int
    customer_id: int | None
    phone_id: int | None
    kind: str
    purpose: str
    stage: str | None
    channel: str
    to_address: str | None
    from_address: str | None
    body: str | None
    content_sid: str | None
    content_variables: dict[str, Any] | None
    expires_at: datetime | None
    attempt: int
    send_started_at: datetime | None
    phone_e164: str | None
    phone_textable: bool | None  # None: no phone row
    phone_not_textable_reason: str | None

    @property
    def maybe_sent(self) -> bool:
        """Whether the message may already exist at Twilio (an earlier attempt, or a send
        that started and never got recorded): look it up before sending again."""
        return self.attempt > 0 or self.send_started_at is not None


class ClaimedRooftop(NamedTuple):
    """What a batch reads of a rooftop: its senders and its validated configuration."""

    id: int
    slug: str
    sms_from: str | None
    whatsapp_from: str | None
    messaging_service_sid: str | None
    config: RooftopConfig


class DueBatch(NamedTuple):
    """A claim's locked rows, their rooftops, why sending is stopped for the account (an
    open Twilio auth alert) or None, and on PostgreSQL the policies' facts the same
    statement read (`app/messaging/facts.py`, `claimed_facts`)."""

    rows: list[Claimed]
    rooftops: dict[int, ClaimedRooftop]
    stopped: str | None
    facts: ReadFacts | None = None


def due_batch(
    connection: Connection, sql: ClaimSql, *, now: datetime, limit: int, lapsed: bool
) -> DueBatch:
    """Up to `limit` due rows, locked, with what the claim reads beside them (`DueBatch`).
    Rows whose lease lapsed (a crashed worker's; only when `lapsed`) come first, then
    pending rows, oldest first.

    Two queries rather than one with OR: each walks the (state, not_before) index in
    order and stops at the limit, where an OR sorts every due row on every claim (a
    backlog of 50,000 texts after an outage would be sorted 500 times). On PostgreSQL
    each row carries its rooftop's senders, a digest of its configuration, the stopped
    check and the policies' facts (round trips fewer per claim; the configuration itself
    is read only when its digest is new to this process); SQLite reads the rooftops after.
    """
    found: list[Any] = []
    for query in (sql.lapsed, sql.pending) if lapsed else (sql.pending,):
        parameters = {"now": now, "limit": limit - len(found), "key": AUTH_ALERT_KEY}
        # `.all()`: one fetchall. Iterating the result fetched row by row, through
        # SQLAlchemy and psycopg each time: an eighth of the dispatcher's CPU.
        found.extend(connection.execute(query, parameters).all())
        if len(found) >= limit:
            break
    rows = [Claimed._make(row[:_CLAIMED]) for row in found]
    if not rows:
        return DueBatch([], {}, None)
    if not sql.joined:
        rooftops, stopped = batch_rooftops(connection, sql, {row.rooftop_id for row in rows})
        return DueBatch(rows, rooftops, stopped)
    # rooftop id -> its columns: slug, senders, the configuration's digest
    heads = {row[1]: row[_CLAIMED : _CLAIMED + 5] for row in found}
    missing = {(rooftop_id, head[4]) for rooftop_id, head in heads.items()} - _CONFIGS.keys()
    if missing:
        _read_configs(connection, sql, {rooftop_id for rooftop_id, _ in missing})
    rooftops = {
        rooftop_id: ClaimedRooftop(
            rooftop_id, head[0], head[1], head[2], head[3], _CONFIGS[(rooftop_id, head[4])]
        )
        for rooftop_id, head in heads.items()
    }
    facts = ReadFacts.of_rows(
        [
            (row.id, row.phone_id, found_row[-3], row.customer_id, found_row[-2])
            for row, found_row in zip(rows, found, strict=True)
        ]
    )
    return DueBatch(rows, rooftops, found[0][-1], facts)


_CLAIMED = len(Claimed._fields)
# (rooftop id, digest of its stored configuration) -> the configuration, validated.
_CONFIGS: dict[tuple[int, str], RooftopConfig] = {}


def _read_configs(connection: Connection, sql: ClaimSql, ids: set[int]) -> None:
    """PostgreSQL: these rooftops' configurations, by the digest the claim saw."""
    if len(_CONFIGS) > 1024:
        _CONFIGS.clear()  # rooftops x configuration versions: a process never nears this
    rows = connection.execute(sql.configs, {"ids": ids_value(ids, connection.dialect.name)})
    for rooftop_id, digest, config_json in rows:
        _CONFIGS[(rooftop_id, digest)] = _config(config_json)


def batch_rooftops(
    connection: Connection, sql: ClaimSql, ids: set[int]
) -> tuple[dict[int, ClaimedRooftop], str | None]:
    """SQLite: the batch's rooftops, their configuration validated once per distinct value,
    and why sending is stopped (read in the same statement)."""
    rows = connection.execute(
        sql.rooftops, {"ids": ids_value(ids, connection.dialect.name), "key": AUTH_ALERT_KEY}
    ).all()
    rooftops = {
        row[0]: ClaimedRooftop(row[0], row[1], row[2], row[3], row[4], _config(row[5]))
        for row in rows
    }
    return rooftops, rows[0][6] if rows else None


def sending_stopped(connection: Connection, sql: ClaimSql) -> str | None:
    """Why sending is stopped for the account (an open Twilio auth alert), or None."""
    stopped: str | None = connection.execute(sql.stopped, {"key": AUTH_ALERT_KEY}).scalar()
    return stopped


@lru_cache(maxsize=256)
def _config(config_json: str) -> RooftopConfig:
    """A rooftop's stored configuration, validated once per distinct text (frozen: shared)."""
    return RooftopConfig.model_validate(json.loads(config_json))


def sending_values(
    row: Claimed, token: str, claimed_until: datetime, *, now: datetime
) -> dict[str, Any]:
    """`ClaimSql.decided`'s parameters for a row sent with addresses the policies filled in."""
    return {
        **_addresses(row),
        "b_state": "sending",
        "b_token": token,
        "b_claimed_until": claimed_until,
        "b_send_started_at": row.send_started_at or now,
        "b_not_before": None,
        "b_reason": None,
    }


def verdict_values(row: Claimed, verdict: Verdict, *, now: datetime) -> dict[str, Any]:
    """`ClaimSql.decided`'s parameters for a row a policy held back, suppressed or expired.

    A held row that nothing may have left the building for keeps no `send_started_at`:
    no lookup at Twilio before its send. One that may exist there keeps it.
    """
    held = verdict.action == "defer"
    return {
        **_addresses(row),
        "b_state": VERDICT_STATES[verdict.action],
        "b_token": None,
        "b_claimed_until": None,
        "b_send_started_at": None if held and not row.maybe_sent else row.send_started_at or now,
        "b_not_before": verdict.not_before if held else None,
        "b_reason": verdict.reason[:200],
    }


def _addresses(row: Claimed) -> dict[str, Any]:
    return {
        "b_id": row.id,
        "b_channel": row.channel,
        "b_to": row.to_address,
        "b_from": row.from_address,
        "b_content_sid": row.content_sid,
    }


class ClaimSql(NamedTuple):
    """The claim's statements for one dialect, built once."""

    stopped: Any
    lapsed: Any
    pending: Any
    rooftops: Any
    claim: Any
    decided: Any
    configs: Any  # PostgreSQL: rooftops' configurations with their digests
    joined: bool  # the due rows carry their rooftop's columns (PostgreSQL)


@lru_cache(maxsize=4)
def claim_sql(dialect: str) -> ClaimSql:
    table = cast(Table, OutboundMessage.__table__)
    c = table.c
    # Table columns, not the ORM's attributes: a statement that names a mapped class is
    # compiled (and its results set up) through the ORM, which costs even on a Connection.
    phone = cast(Table, Phone.__table__).c
    rooftop = cast(Table, Rooftop.__table__).c
    alert = cast(Table, Alert.__table__).c
    own = [
        c.id,
        c.rooftop_id,
        c.customer_id,
        c.phone_id,
        c.kind,
        c.purpose,
        c.stage,
        c.channel,
        c.to_address,
        c.from_address,
        c.body,
        c.content_sid,
        c.content_variables,
        c.expires_at,
        c.attempt,
        c.send_started_at,
    ]
    phone_columns = [phone.e164, phone.textable, phone.not_textable_reason]
    at = bindparam("now", type_=c.not_before.type)
    limit = bindparam("limit", type_=Integer())
    stopped = select(alert.message).where(
        alert.key == bindparam("key"), alert.resolved_at.is_(None)
    )
    joined = dialect == "postgresql"
    digest = func.md5(sql_cast(rooftop.config, Text()))

    def due(*where: Any) -> Any:
        if not joined:  # SQLite: its write lock (BEGIN IMMEDIATE) serialises claims
            return (
                select(*own, *phone_columns)
                .outerjoin(Phone.__table__, phone.id == c.phone_id)
                .where(*where)
                .order_by(c.not_before, c.id)
                .limit(limit)
            )
        # PostgreSQL: the rows are picked and locked first (a CTE: the sort and the limit
        # see the outbox's own columns only), then joined to their phones and rooftops, so
        # the joins and the configuration's digest cost the batch's rows, not every due row.
        locked = (
            select(*own, c.not_before)
            .where(*where)
            .order_by(c.not_before, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        return (
            select(
                *(locked.c[column.name] for column in own),
                *phone_columns,
                rooftop.slug,
                rooftop.sms_from,
                rooftop.whatsapp_from,
                rooftop.messaging_service_sid,
                digest,
                *claimed_facts(locked, now=at),
                stopped.scalar_subquery(),
            )
            .select_from(locked)
            .outerjoin(Phone.__table__, phone.id == locked.c.phone_id)
            .join(Rooftop.__table__, rooftop.id == locked.c.rooftop_id)
            .order_by(locked.c.not_before, locked.c.id)
        )

    claim = (
        update(table)
        .where(in_ids(c.id, "ids", dialect))
        .values(
            state="sending",
            claim_token=bindparam("token"),
            claimed_until=bindparam("claimed_until", type_=c.claimed_until.type),
            # Not `now`: on PostgreSQL this UPDATE runs inside the pacing upsert, whose
            # `now` is the real time (pacing.reserve_batch_slots), not the claim's clock.
            send_started_at=func.coalesce(
                c.send_started_at, bindparam("claimed_at", type_=c.send_started_at.type)
            ),
        )
    )
    decided = (
        update(table)
        .where(c.id == bindparam("b_id"))
        .values(
            state=bindparam("b_state"),
            claim_token=bindparam("b_token"),
            claimed_until=bindparam("b_claimed_until", type_=c.claimed_until.type),
            send_started_at=bindparam("b_send_started_at", type_=c.send_started_at.type),
            not_before=func.coalesce(
                bindparam("b_not_before", type_=c.not_before.type), c.not_before
            ),
            suppressed_reason=func.coalesce(
                bindparam("b_reason", type_=Text()), c.suppressed_reason
            ),
            channel=bindparam("b_channel"),
            to_address=bindparam("b_to"),
            from_address=bindparam("b_from"),
            content_sid=bindparam("b_content_sid"),
        )
    )
    return ClaimSql(
        stopped=stopped,
        lapsed=due(c.state.in_(("claimed", "sending")), c.claimed_until < at),
        pending=due(c.state == "pending", c.not_before <= at),
        rooftops=select(
            rooftop.id,
            rooftop.slug,
            rooftop.sms_from,
            rooftop.whatsapp_from,
            rooftop.messaging_service_sid,
            sql_cast(rooftop.config, Text()),
            stopped.scalar_subquery(),
        ).where(in_ids(rooftop.id, "ids", dialect)),
        claim=claim,
        decided=decided,
        configs=select(rooftop.id, digest, sql_cast(rooftop.config, Text())).where(
            in_ids(rooftop.id, "ids", dialect)
        ),
        joined=joined,
    )
