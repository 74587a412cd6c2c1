"""Storing an answered inbound text: the message's row and its conversation task's writes.

Core statements on the session's connection (nothing flushed first, the ORM's execution
steps skipped): every inbound text runs them, so each is built once.
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.conversations.models import InboundMessage, Task
from app.conversations.tasks import HeldWrites, store_summaries
from app.db import is_postgres

__all__ = ["AlreadyReceived", "store"]


class AlreadyReceived(Exception):
    """This MessageSid is stored already (a retry, or a delivery racing this one).

    Nothing of this attempt may stay: the caller rolls it back and answers with
    `first_answer`.
    """

    def __init__(self, sid: str) -> None:
        super().__init__(f"inbound message {sid} was received before")
        self.sid = sid


def store(session: Session, row: InboundMessage, held: HeldWrites) -> int:
    """Store the answered message and its conversation task's writes; the message's id.

    Core statements on the session's connection: nothing is flushed first and the ORM's
    execution steps are skipped. On PostgreSQL a message with one task write (a new task,
    or a joined task's summary) is one statement; elsewhere they go one after the other.
    """
    postgres = is_postgres(session)
    together = _together(held) if postgres else ""
    # Read from the instance's __dict__ (an attribute never set is None, as getattr says),
    # not through the ORM's descriptors: ~90 us less per text.
    values = {key: row.__dict__.get(column) for key, column in _STORED}
    if together == "task":
        task = held.opened[0]
        values |= {key: task.__dict__.get(column) for key, column in _TASK_STORED}
        stored = session.connection().execute(_store_statement(True, together), values).first()
        if stored is None:  # no message row, so no task either
            raise AlreadyReceived(row.provider_sid)
        task.id, task.inbound_message_id = stored
        return cast(int, task.inbound_message_id)
    if together == "summary":
        [(values["task_id"], values["task_summary"])] = held.summaries.items()
    found = session.connection().scalar(_store_statement(postgres, together), values)
    if found is None:
        raise AlreadyReceived(row.provider_sid)
    if not together:
        store_summaries(session, held.summaries)
        for opened in held.opened:  # the ORM writes it with the unit of work
            opened.inbound_message_id = found
            session.add(opened)
    return cast(int, found)


def _together(held: HeldWrites) -> str:
    """The held write PostgreSQL makes in the message's own statement: "task", "summary",
    or "" (none held, or more than one)."""
    if len(held.opened) + len(held.summaries) != 1:
        return ""
    return "task" if held.opened else "summary"


# (parameter, column): parameters are named apart from every column, as a parameter named
# like a column of a table that a statement updates is added to that UPDATE's SET clause.
_STORED = tuple(
    (f"message_{c.key}", c.key) for c in InboundMessage.__table__.columns if c.key != "id"
)
_BY_DATABASE = ("id", "inbound_message_id")  # a task's columns the statement fills itself
_TASK_STORED = tuple(
    (f"task_{c.key}", c.key) for c in Task.__table__.columns if c.key not in _BY_DATABASE
)


@cache
def _store_statement(postgres: bool, with_task: str) -> Any:
    """INSERT ... ON CONFLICT (provider_sid) DO NOTHING RETURNING id, built once: every
    inbound text runs it, and building a statement costs more than running it.

    `with_task` (PostgreSQL): "task" also inserts a new task with the message's id (the
    statement returns the task's id and the message's), "summary" also sets a task's summary.
    """
    table, tasks = cast(Table, InboundMessage.__table__), cast(Table, Task.__table__)
    insert = postgresql.insert if postgres else sqlite.insert
    stored = (
        insert(table)
        .values({name: bindparam(key, type_=table.c[name].type) for key, name in _STORED})
        .on_conflict_do_nothing(index_elements=["provider_sid"])
        .returning(table.c.id)
    )
    if not with_task:
        return stored
    message = stored.cte("stored")
    if with_task == "summary":
        summary = bindparam("task_summary", type_=tasks.c.summary.type)
        joined = update(tasks).where(tasks.c.id == bindparam("task_id")).values(summary=summary)
        return select(message.c.id).add_cte(joined.cte("joined"))
    task = [bindparam(key, type_=tasks.c[name].type) for key, name in _TASK_STORED]
    return (
        postgresql.insert(tasks)
        .from_select(
            [*(name for _, name in _TASK_STORED), "inbound_message_id"], select(*task, message.c.id)
        )
        .returning(tasks.c.id, tasks.c.inbound_message_id)
    )
