"""Scheduled work for the outbox: send what is due, and catch up on missed status callbacks."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.db import Database, utcnow
from app.messaging.dispatcher import Clock, DispatchResult, dispatch_due
from app.messaging.models import OutboundMessage
from app.messaging.service import StatusUpdate, apply_early_statuses, apply_provider_status
from integrations.twilio.base import MessageGateway, SendError

log = logging.getLogger(__name__)


def send_due_messages(
    database: Database,
    *,
    gateway: MessageGateway,
    public_url: str,
    worker_id: str,
    clock: Clock = utcnow,
    batch_size: int = 100,
    concurrency: int = 32,
    max_batches: int = 200,
) -> DispatchResult:
    """Dispatch batch after batch until nothing is due now (`pitwall worker --once`).

    One thread pool serves every batch, and each next batch is claimed while the
    last one's sends are in flight. Retries scheduled for later wait for a later run.
    """
    return dispatch_due(
        database,
        gateway=gateway,
        public_url=public_url,
        worker_id=worker_id,
        clock=clock,
        batch_size=batch_size,
        concurrency=concurrency,
        max_batches=max_batches,
    )


def apply_held_statuses(database: Database, *, clock: Clock = utcnow) -> int:
    """Apply the status callbacks that came before their sends were recorded."""
    with database.transaction() as session:
        return apply_early_statuses(session, now=clock())


def refresh_unconfirmed(
    database: Database,
    *,
    gateway: MessageGateway,
    clock: Clock = utcnow,
    older_than: timedelta = timedelta(minutes=10),
    within: timedelta = timedelta(days=2),
    limit: int = 100,
) -> int:
    """Fetch the status of messages whose callbacks never came (e.g. one that raced our commit).

    Returns how many rows moved forward.
    """
    now = clock()
    with database.transaction() as session:
        sids = session.scalars(
            select(OutboundMessage.provider_sid)
            .where(
                OutboundMessage.state.in_(("queued", "sent")),
                OutboundMessage.provider_sid.is_not(None),
                OutboundMessage.updated_at < now - older_than,
                OutboundMessage.sent_at > now - within,
            )
            .order_by(OutboundMessage.updated_at)
            .limit(limit)
        ).all()
    moved = 0
    for sid in sids:
        if sid is None:
            continue
        try:
            found = gateway.fetch(sid)
        except SendError as exc:
            log.warning("could not fetch status of %s: %s", sid, exc)
            continue
        with database.transaction() as session:
            if (
                apply_provider_status(session, StatusUpdate(sid=sid, status=found.status))
                == "updated"
            ):
                moved += 1
    return moved
