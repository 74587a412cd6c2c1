"""The board: a rooftop's repair orders, what needs a person first, closed ones out of the way.

Attention comes in this order: a customer waiting on a reply or a callback, an
approval waiting on the customer, a promised time already passed, a stage stuck past
its alert; then every other open RO by promised time. ROs closed today are counted
and shown only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from app.auth.models import User
from app.conversations.models import InboundMessage, Task
from app.customers.models import Customer
from app.dealers.models import Rooftop
from app.messaging.models import OutboundMessage
from app.repair_orders.models import OPEN_STAGES, RepairOrder
from app.web.queries import contact_state, day_start, latest_per, rows_by_id

# Stages in which a passed promised time means the customer is waiting on us.
_WORKING_STAGES = tuple(s for s in OPEN_STAGES if s != "ready_for_pickup")
# Flags in the order they call for a person; the first one an RO has sets its place.
ATTENTION = ("needs reply", "call back", "awaiting approval", "late", "stuck")
_TASK_FLAGS = {"needs_reply": "needs reply", "callback": "call back", "stuck_stage": "stuck"}
# A customer's answer (approval by text or on the customer page, a booking) waiting to be
# entered in the DMS: shown beside the attention flags, not ranked among them.
_ANSWER_FLAGS = {"approval": "customer answered", "booking": "booked"}
_NOT_SENT = ("failed", "undelivered", "expired", "suppressed", "superseded", "canceled")


@dataclass(frozen=True)
class BoardFilters:
    """What the advisor asked the board for; the defaults show every open RO."""

    mine: bool = False
    stage: str | None = None
    late: bool = False
    closed: bool = False  # also list the ROs closed today

    @classmethod
    def parse(
        cls, *, mine: str = "", stage: str = "", late: str = "", closed: str = ""
    ) -> BoardFilters:
        """From query parameters; an unknown stage is refused with the list of stages."""
        if stage and stage not in OPEN_STAGES:
            raise ValueError(f"stage {stage!r} is not one of {', '.join(OPEN_STAGES)}")
        return cls(mine=bool(mine), stage=stage or None, late=bool(late), closed=bool(closed))

    @property
    def query(self) -> str:
        """These filters as a query string, for the rows the board polls."""
        parts = [("mine", self.mine), ("late", self.late), ("closed", self.closed)]
        query = "&".join(f"{name}=1" for name, on in parts if on)
        return f"{query}&stage={self.stage}" if self.stage else query


@dataclass(frozen=True)
class BoardRow:
    ro_id: int
    ro_number: str
    customer_id: int | None
    customer_name: str
    vehicle: str
    stage: str
    raw_status: str
    promised_at: datetime | None
    advisor: str
    last_message: OutboundMessage | None
    last_reply: InboundMessage | None
    flags: tuple[str, ...]
    updated_at: datetime
    closed: bool = False

    @property
    def attention(self) -> int:
        """0 for the most urgent flag, len(ATTENTION) when nothing needs a person."""
        return min(
            (ATTENTION.index(f) for f in self.flags if f in ATTENTION), default=len(ATTENTION)
        )

    @property
    def message_not_sent(self) -> str | None:
        """Why the last text did not go out (or is held), for the row's note."""
        message = self.last_message
        if message is None or not message.suppressed_reason:
            return None
        if message.state in _NOT_SENT or message.state == "pending":
            return message.suppressed_reason
        return None


@dataclass
class Board:
    rows: list[BoardRow]
    closed_today: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # flag -> ROs with it, before filters


def _is_mine(ro: RepairOrder, me: User | None, my_tasks: set[int]) -> bool:
    if me is None:
        return False
    if ro.id in my_tasks:
        return True
    advisor_id = getattr(me, "dms_advisor_id", None)
    name = getattr(me, "name", None)
    return bool(
        (advisor_id and ro.advisor_ref == advisor_id)
        or (name and (ro.advisor_name or "").strip().lower() == name.strip().lower())
    )


def board(
    session: Session,
    *,
    rooftop: Rooftop,
    now: datetime,
    filters: BoardFilters | None = None,
    me: User | None = None,
) -> Board:
    """Today's repair orders at a rooftop, most in need of a person first."""
    filters = filters or BoardFilters()
    since = day_start(now, rooftop.settings.zone)
    ros = list(
        session.scalars(
            select(RepairOrder)
            .options(selectinload(RepairOrder.vehicle))
            .where(
                RepairOrder.rooftop_id == rooftop.id,
                or_(RepairOrder.stage.in_(OPEN_STAGES), RepairOrder.closed_at >= since),
            )
        )
    )
    rows = _rows(session, rooftop=rooftop, ros=ros, now=now)
    tasks_mine: set[int] = set()
    if filters.mine and me is not None:
        tasks_mine = {
            ro_id
            for ro_id in session.scalars(
                select(Task.repair_order_id).where(
                    Task.rooftop_id == rooftop.id,
                    Task.state == "open",
                    Task.assigned_user_id == me.id,
                )
            )
            if ro_id is not None
        }
    by_id = {ro.id: ro for ro in ros}
    open_rows = [r for r in rows if not r.closed]
    counts = {flag: sum(flag in r.flags for r in open_rows) for flag in ATTENTION}
    closed_today = len(rows) - len(open_rows)
    shown = [
        r
        for r in rows
        if (filters.closed or not r.closed)
        and (not filters.stage or r.stage == filters.stage)
        and (not filters.late or "late" in r.flags)
        and (not filters.mine or _is_mine(by_id[r.ro_id], me, tasks_mine))
    ]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    shown.sort(key=lambda r: (r.closed, r.attention, r.promised_at or far, r.ro_number))
    return Board(rows=shown, closed_today=closed_today, counts=counts)


def _rows(
    session: Session, *, rooftop: Rooftop, ros: list[RepairOrder], now: datetime
) -> list[BoardRow]:
    ro_ids = [ro.id for ro in ros]
    customer_ids = {ro.customer_id for ro in ros if ro.customer_id is not None}
    customers = rows_by_id(session, Customer, customer_ids)
    last_message = latest_per(
        session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.repair_order_id.in_(ro_ids))
            .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
        ),
        key=lambda m: m.repair_order_id,
    )
    last_reply = latest_per(
        session.scalars(
            select(InboundMessage)
            .where(InboundMessage.customer_id.in_(customer_ids))
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        ),
        key=lambda m: m.customer_id,
    )
    textable, opted_out = contact_state(session, customer_ids=customer_ids)
    by_ro: dict[int, set[str]] = {}
    by_customer: dict[int, set[str]] = {}
    for ro_id, customer_id, kind in session.execute(
        select(Task.repair_order_id, Task.customer_id, Task.kind).where(
            Task.state == "open",
            Task.rooftop_id == rooftop.id,
            Task.kind.in_([*_TASK_FLAGS, *_ANSWER_FLAGS]),
        )
    ):
        flag = _TASK_FLAGS.get(kind) or _ANSWER_FLAGS[kind]
        if ro_id is not None:
            by_ro.setdefault(ro_id, set()).add(flag)
        elif customer_id is not None and flag != "stuck":
            by_customer.setdefault(customer_id, set()).add(flag)
    rows = []
    for ro in ros:
        customer = customers.get(ro.customer_id) if ro.customer_id else None
        closed = ro.stage not in OPEN_STAGES
        tasks = by_ro.get(ro.id, set()) | by_customer.get(ro.customer_id or 0, set())
        flags: list[str] = [f for f in ("needs reply", "call back") if f in tasks and not closed]
        if ro.stage == "awaiting_approval":
            flags.append("awaiting approval")
        if ro.promised_at and ro.promised_at < now and ro.stage in _WORKING_STAGES:
            flags.append("late")
        if "stuck" in tasks and not closed:
            flags.append("stuck")
        flags.extend(f for f in _ANSWER_FLAGS.values() if f in by_ro.get(ro.id, set()))
        if ro.customer_id in opted_out:
            flags.append("opted out")
        if ro.customer_id not in textable:
            flags.append("not textable")
        rows.append(
            BoardRow(
                ro_id=ro.id,
                ro_number=ro.ro_number,
                customer_id=ro.customer_id,
                customer_name=customer.display_name if customer else "unknown customer",
                vehicle=ro.vehicle.label if ro.vehicle else "",
                stage=ro.stage,
                raw_status=ro.raw_status,
                promised_at=ro.promised_at,
                advisor=ro.advisor_name or ro.advisor_ref or "—",
                last_message=last_message.get(ro.id),
                last_reply=last_reply.get(ro.customer_id),
                flags=tuple(flags),
                updated_at=ro.updated_at,
                closed=closed,
            )
        )
    return rows
