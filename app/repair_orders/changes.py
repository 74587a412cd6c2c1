"""What the poller tells the rest of Pitwall when a repair order changes.

The poller builds one `RepairOrderChange` per RO whose content changed and hands
it to every hook in the same transaction, so the outbox rows a rule writes commit
together with the change that caused them (or not at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy.orm import Session

from app.dealers.models import Rooftop
from app.repair_orders.models import RepairOrder, RoLine


@dataclass(frozen=True)
class LineChange:
    line: RoLine
    previous_status: str | None  # None for a line that is new on this RO


@dataclass(frozen=True)
class RepairOrderChange:
    ro: RepairOrder
    rooftop: Rooftop
    is_new: bool
    previous_stage: str | None
    previous_promised_at: datetime | None
    at: datetime
    line_changes: tuple[LineChange, ...] = field(default_factory=tuple)

    @property
    def stage_changed(self) -> bool:
        return self.is_new or self.previous_stage != self.ro.stage

    @property
    def promised_changed(self) -> bool:
        return not self.is_new and self.previous_promised_at != self.ro.promised_at


class ChangeHook(Protocol):
    """A rule that reacts to an RO change. It writes rows; it never commits."""

    def __call__(self, session: Session, change: RepairOrderChange) -> None: ...


class PageHook(Protocol):
    """A rule that reacts to a page of RO changes at once: a query per page, not per RO."""

    def __call__(self, session: Session, changes: Sequence[RepairOrderChange]) -> None: ...


@dataclass(frozen=True)
class ForPage:
    """A ChangeHook that can take a whole page: `run_hooks` hands it the page at once."""

    page: PageHook

    def __call__(self, session: Session, change: RepairOrderChange) -> None:
        self.page(session, [change])


def run_hooks(
    session: Session, hooks: Sequence[ChangeHook], changes: Sequence[RepairOrderChange]
) -> None:
    """Each hook in turn over the page's changes: a `ForPage` hook takes them all at once,
    any other one change at a time, in page order."""
    for hook in hooks:
        if isinstance(hook, ForPage):
            hook.page(session, changes)
        else:
            for change in changes:
                hook(session, change)


class KnownRo(NamedTuple):
    """What a page needs to know about a stored RO to decide whether, and what, to write."""

    id: int
    content_hash: str
    payload_hash: str | None
    missing_polls: int
    stage: str
    promised_at: datetime | None
    customer_id: int | None
    customer_hash: str | None
    lines_hash: str | None
    vehicle_hash: str | None
    vehicle_id: int | None
