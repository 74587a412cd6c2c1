"""Approvals and declines on the customer's page: reviewed, confirmed, recorded once.

The customer picks approve or decline for each line waiting on them, sees one
confirmation screen with the total, and confirms. The record keeps each line as shown
(description, technician's notes, photos, price), the choice, the time, the IP and the
user agent. Each line can be answered once: `customer_line_answer.ro_line_id` is
unique, so a double submit (two taps, two tabs, a retried POST) records one answer and
the other finds the lines already answered and changes nothing. A line that no longer
waits (the advisor entered it, the RO moved on or closed) is named and left alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.conversations.models import Approval, Task
from app.conversations.tasks import open_task
from app.customer_page.links import Resolved
from app.customer_page.models import LineAnswer, PageAnswer
from app.customer_page.page import PageLine, lines_view
from app.messaging.templates import format_money
from app.repair_orders.models import RepairOrder, RoEvent, RoLine
from app.repair_orders.write_back import ENTER_NOTE, WRITE_NOTE, queue_answers

CHOICES = ("approve", "decline")
# None of Pitwall's DMS adapters (integrations/dms) can write an approval back: every
# port is read-only. The advisor's task says to enter it.


@dataclass
class Review:
    """The confirmation screen: the chosen lines, what no longer waits, what is missing."""

    chosen: list[tuple[PageLine, str]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # descriptions no longer awaiting
    missing: bool = False  # a line waiting got no choice

    @property
    def approved_cents(self) -> int:
        return sum(line.amount_cents for line, choice in self.chosen if choice == "approve")

    @property
    def digest(self) -> str:
        """What the confirmation screen showed (each line's text and price, and the choice):
        a price the DMS changes before the customer confirms must not be approved unseen."""
        shown = sorted((line.id, line.description, line.amount_cents, c) for line, c in self.chosen)
        return hashlib.sha256(repr(shown).encode("utf-8")).hexdigest()[:32]


def parse_choices(form: dict[str, str]) -> dict[int, str]:
    """`line-<id>` = approve|decline fields; anything else in the form is ignored."""
    choices: dict[int, str] = {}
    for key, value in form.items():
        if not key.startswith("line-") or value not in CHOICES:
            continue
        number = key.removeprefix("line-")
        if number.isdigit() and len(number) < 10:
            choices[int(number)] = value
    return choices


def review(session: Session, *, ro: RepairOrder, choices: dict[int, str]) -> Review:
    """Check the choices against the lines waiting now; nothing is written."""
    view = lines_view(session, ro=ro)
    awaiting = {line.id: line for line in view.awaiting}
    by_id = {line.id: line for line in ro.lines}
    result = Review()
    for line_id, choice in choices.items():
        if line_id in awaiting:
            result.chosen.append((awaiting[line_id], choice))
        elif line_id in by_id:
            result.gone.append(by_id[line_id].description)
    result.missing = any(line_id not in choices for line_id in awaiting)
    return result


@dataclass(frozen=True)
class Recorded:
    answer: PageAnswer | None  # None: nothing was recorded
    gone: tuple[str, ...]
    already: bool  # every chosen line had been answered before
    changed: bool = False  # a line's text or price is not what the confirmation showed


def record(
    session: Session,
    *,
    resolved: Resolved,
    choices: dict[int, str],
    language: str,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    shown_digest: str | None = None,
) -> Recorded:
    """Record the confirmed choices once, note approvals on the lines, task the advisor.

    `shown_digest`: the confirmation screen's digest; when the lines no longer match it (the DMS
    changed a price meanwhile) nothing is recorded and the customer looks again.
    """
    ro, customer, link = resolved.ro, resolved.customer, resolved.link
    assert ro is not None and customer is not None and link is not None
    assert resolved.rooftop is not None
    checked = review(session, ro=ro, choices=choices)
    if not checked.chosen:
        return Recorded(None, tuple(checked.gone), already=bool(checked.gone))
    if shown_digest is not None and shown_digest != checked.digest:
        return Recorded(None, tuple(checked.gone), already=False, changed=True)
    shown = [
        {
            "line": line.line_code,
            "op_code": next(r.op_code for r in ro.lines if r.id == line.id),
            "description": line.description,
            "notes": list(line.notes),
            "photos": len(line.photo_ids),
            "amount_cents": line.amount_cents,
            "choice": choice,
        }
        for line, choice in checked.chosen
    ]
    approved = [line for line, choice in checked.chosen if choice == "approve"]
    declined = [line for line, choice in checked.chosen if choice == "decline"]
    answer = PageAnswer(
        rooftop_id=ro.rooftop_id,
        repair_order_id=ro.id,
        customer_id=customer.id,
        link_id=link.id,
        lines=shown,
        approved_cents=sum(line.amount_cents for line in approved),
        declined_cents=sum(line.amount_cents for line in declined),
        language=language,
        ip=(ip or "")[:45] or None,
        user_agent=(user_agent or "")[:400] or None,
        requested_at=_approval_requested_at(session, ro=ro, now=now),
        answered_at=now,
    )
    try:
        with session.begin_nested():
            session.add(answer)
            session.flush()
            session.add_all(
                LineAnswer(ro_line_id=line.id, answer_id=answer.id, choice=choice, at=now)
                for line, choice in checked.chosen
            )
            session.flush()
    except IntegrityError:
        # Another submit answered these lines a moment ago: it stands, this one changes nothing.
        return Recorded(None, tuple(checked.gone), already=True)
    if approved:
        session.execute(
            update(RoLine)
            .where(
                RoLine.id.in_([line.id for line in approved]), RoLine.customer_approved_at.is_(None)
            )
            .values(customer_approved_at=now)
        )
        session.add(
            Approval(
                rooftop_id=ro.rooftop_id,
                repair_order_id=ro.id,
                customer_id=customer.id,
                channel="page",
                words="approved on the customer's page",
                lines=[
                    {
                        k: v
                        for k, v in row.items()
                        if k in ("line", "op_code", "description", "amount_cents")
                    }
                    for row in shown
                    if row["choice"] == "approve"
                ],
                total_cents=answer.approved_cents,
                shown="customer page",
                approved_at=now,
            )
        )
    by_id = {line.id: line for line in ro.lines}
    queued = queue_answers(
        session,
        rooftop=resolved.rooftop,
        ro=ro,
        answers=[
            (by_id[line.id], "approved" if choice == "approve" else "declined")
            for line, choice in checked.chosen
        ],
        source="page",
        now=now,
    )
    task = open_task(
        session,
        rooftop_id=ro.rooftop_id,
        kind="approval",
        summary=_task_summary(
            ro, customer.display_name, approved, declined, WRITE_NOTE if queued else ENTER_NOTE
        ),
        now=now,
        customer_id=customer.id,
        repair_order_id=ro.id,
        advisor_ref=ro.advisor_ref,
    )
    assert task is not None  # no dedupe key: always opens
    session.flush()
    answer.task_id = task.id
    return Recorded(answer, tuple(checked.gone), already=False)


def _task_summary(
    ro: RepairOrder, name: str, approved: list[PageLine], declined: list[PageLine], dms: str
) -> str:
    parts = []
    if approved:
        listed = ", ".join(
            f"{line.description} {format_money(line.amount_cents)}" for line in approved
        )
        parts.append(f"approved {listed}")
    if declined:
        listed = ", ".join(
            f"{line.description} {format_money(line.amount_cents)}" for line in declined
        )
        parts.append(f"declined {listed}")
    return f"{name} on the customer page (RO {ro.ro_number}): {'; '.join(parts)} — {dms}"


def _approval_requested_at(session: Session, *, ro: RepairOrder, now: datetime) -> datetime | None:
    """When the RO last moved to awaiting_approval: the request this answers."""
    return session.scalar(
        select(RoEvent.at)
        .where(
            RoEvent.repair_order_id == ro.id,
            RoEvent.kind == "stage",
            RoEvent.to_stage == "awaiting_approval",
            RoEvent.at <= now,
        )
        .order_by(RoEvent.at.desc())
        .limit(1)
    )


def answer_of(session: Session, *, answer_id: int, ro_id: int) -> PageAnswer | None:
    """A page answer, only if it belongs to this RO (a query string names it)."""
    answer = session.get(PageAnswer, answer_id)
    return answer if answer is not None and answer.repair_order_id == ro_id else None


def task_of(session: Session, task_id: int | None) -> Task | None:
    return session.get(Task, task_id) if task_id else None
