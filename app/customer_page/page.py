"""What the customer's page shows: the status, the lines to approve, the declined work.

Everything here is read for one RO through a live link. Nothing personal beyond the
customer's and advisor's first names and the vehicle is ever put in these views.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.customer_page import i18n
from app.customer_page.models import LineAnswer, LineNote, LinePhoto
from app.dealers.models import Rooftop
from app.repair_orders.models import RepairOrder, RoEvent, RoLine

# The shop's path, in order; diagnosing and quality_check show only when the RO passed them.
PATH = (
    "checked_in",
    "diagnosing",
    "awaiting_approval",
    "awaiting_parts",
    "in_repair",
    "quality_check",
    "ready_for_pickup",
)
ALWAYS_SHOWN = ("checked_in", "in_repair", "ready_for_pickup")
ENDED = ("closed", "canceled")


@dataclass(frozen=True)
class Step:
    stage: str
    label: str
    at: str | None  # the rooftop's wall clock, when reached
    state: str  # done | current | next


@dataclass(frozen=True)
class StatusView:
    stage: str
    label: str
    steps: tuple[Step, ...]
    promised: str | None
    promised_before: str | None  # the first promise, when it has moved
    waiting_on: str | None
    version: str


@dataclass(frozen=True)
class PageLine:
    id: int
    line_code: str
    description: str
    amount_cents: int
    notes: tuple[str, ...] = ()
    photo_ids: tuple[int, ...] = ()
    answer: str | None = None  # approve | decline, when answered on the page


@dataclass
class LinesView:
    awaiting: list[PageLine] = field(default_factory=list)
    answered: list[PageLine] = field(default_factory=list)
    declined: list[PageLine] = field(default_factory=list)


def first_name(full_name: str | None) -> str | None:
    """The advisor's first name only (the DMS gives "Dana Ruiz" or "RUIZ, DANA")."""
    if not full_name or not full_name.strip():
        return None
    name = full_name.strip()
    if "," in name:
        name = name.split(",", 1)[1].strip() or name.split(",", 1)[0]
    return name.split()[0].capitalize() if name.isupper() else name.split()[0]


def status_view(
    session: Session, *, ro: RepairOrder, rooftop: Rooftop, language: str, awaiting: int = 0
) -> StatusView:
    """The stage timeline with times in the rooftop's zone, the promise and what is awaited."""
    zone = rooftop.settings.zone
    events = session.scalars(
        select(RoEvent).where(RoEvent.repair_order_id == ro.id).order_by(RoEvent.at, RoEvent.id)
    ).all()
    reached: dict[str, datetime] = {}
    first_promise: str | None = None
    for event in events:
        if event.kind == "stage" and event.to_stage and event.to_stage not in reached:
            reached[event.to_stage] = event.at
        if event.kind == "promised" and first_promise is None and event.detail:
            first_promise = event.detail.get("from")
    reached.setdefault("checked_in", ro.opened_at)
    reached.setdefault(ro.stage, ro.updated_at)
    current = ro.stage
    # Answered on the page while the DMS still says "waiting on approval": the customer's
    # part is done, so the header and the current step say so until the shop enters it.
    # (Lines still pending in the DMS, none of them waiting on the customer: answered by
    # page or text. With no pending line at all there is nothing here to answer.)
    answered = (
        current == "awaiting_approval"
        and not awaiting
        and any(line.status == "pending" for line in ro.lines)
    )
    steps = []
    position = PATH.index(current) if current in PATH else len(PATH)
    for index, stage in enumerate(PATH):
        if stage == current:
            state = "current"
        elif stage in reached and index < position:
            state = "done"
        elif index > position and stage in ALWAYS_SHOWN:
            state = "next"
        else:
            continue
        at = reached.get(stage) if state != "next" else None
        shown = "approval_answered" if answered and state == "current" else stage
        steps.append(
            Step(
                stage=stage,
                label=i18n.stage_label(language, shown),
                at=i18n.day_and_time(at, zone, language) if at else None,
                state=state,
            )
        )
    if current in ENDED:
        at = ro.closed_at or ro.updated_at
        steps.append(
            Step(
                current,
                i18n.stage_label(language, current),
                i18n.day_and_time(at, zone, language),
                "current",
            )
        )
    promised = i18n.day_and_time(ro.promised_at, zone, language) if ro.promised_at else None
    before = None
    if first_promise and ro.promised_at is not None:
        # Moved as the customer reads it: a DMS re-stamping seconds is not a new time.
        shown_before = i18n.day_and_time(datetime.fromisoformat(first_promise), zone, language)
        before = shown_before if shown_before != promised else None
    waiting = {"awaiting_parts": "waiting_parts", "awaiting_approval": "waiting_approval"}
    if answered:
        waiting["awaiting_approval"] = "waiting_shop"  # the shop enters the answer next
    waiting_on = i18n.t(language, waiting[current]) if current in waiting else None
    version = hashlib.sha256(
        repr(
            (current, answered, ro.promised_at, [(s.stage, s.at, s.state) for s in steps])
        ).encode()
    ).hexdigest()[:16]
    return StatusView(
        stage=current,
        label=i18n.stage_label(language, "approval_answered" if answered else current),
        steps=tuple(steps),
        promised=promised,
        promised_before=before,
        waiting_on=waiting_on,
        version=version,
    )


def awaits_customer(line: RoLine, answered: set[int]) -> bool:
    """A line waits on the customer while pending in the DMS and not yet answered anywhere."""
    return (
        line.status == "pending" and line.customer_approved_at is None and line.id not in answered
    )


def lines_view(session: Session, *, ro: RepairOrder) -> LinesView:
    """The RO's lines sorted into awaiting an answer, answered on the page, and declined."""
    ids = [line.id for line in ro.lines]
    answers = dict(
        session.execute(
            select(LineAnswer.ro_line_id, LineAnswer.choice).where(LineAnswer.ro_line_id.in_(ids))
        ).all()
    )
    notes: dict[int, list[str]] = {}
    for line_id, note in session.execute(
        select(LineNote.ro_line_id, LineNote.note)
        .where(LineNote.ro_line_id.in_(ids))
        .order_by(LineNote.id)
    ):
        notes.setdefault(line_id, []).append(note)
    photos: dict[int, list[int]] = {}
    for line_id, photo_id in session.execute(
        select(LinePhoto.ro_line_id, LinePhoto.id)
        .where(LinePhoto.ro_line_id.in_(ids))
        .order_by(LinePhoto.id)
    ):
        photos.setdefault(line_id, []).append(photo_id)
    view = LinesView()
    for line in ro.lines:
        shown = PageLine(
            id=line.id,
            line_code=line.line_code,
            description=line.description,
            amount_cents=line.amount_cents,
            notes=(*([line.note] if line.note else []), *notes.get(line.id, ())),
            photo_ids=tuple(photos.get(line.id, ())),
            answer=answers.get(line.id),
        )
        if ro.stage not in ENDED and awaits_customer(line, set(answers)):
            view.awaiting.append(shown)
        elif line.id in answers:
            view.answered.append(shown)
        if line.status == "declined" or (
            answers.get(line.id) == "decline" and line.status == "pending"
        ):
            view.declined.append(shown)
    return view
