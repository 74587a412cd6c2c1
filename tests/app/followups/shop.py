"""A service drive for tests: customers, vehicles and ROs that change the way the poller sees them.

Every change goes through the same `RepairOrderChange` the DMS poller builds and is
handed to the follow-up and watchdog hooks in the caller's transaction, exactly as
`apply_record` does in production. `mark_sent` stands in for the dispatcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.conversations.models import InboundMessage
from app.customers.models import Customer, CustomerPhone, Phone
from app.dealers.models import Rooftop
from app.followups.service import on_repair_order_change
from app.followups.watchdog import on_promised_change
from app.messaging.models import OutboundMessage
from app.repair_orders.changes import ChangeHook, LineChange, RepairOrderChange
from app.repair_orders.models import RepairOrder, RoEvent, RoLine, Vehicle

HOOKS: tuple[ChangeHook, ...] = (on_repair_order_change, on_promised_change)


@dataclass(frozen=True)
class Line:
    code: str
    op_code: str
    description: str
    cents: int
    status: str


class Shop:
    """Arrange ROs and replay their DMS changes through the hooks, in `session`."""

    def __init__(self, session: Session, hooks: Sequence[ChangeHook] = HOOKS) -> None:
        self.session = session
        self.hooks = hooks
        self._sid = 0

    def rooftop(self, slug: str) -> Rooftop:
        return self.session.scalars(select(Rooftop).where(Rooftop.slug == slug)).one()

    def customer(
        self, first: str, last: str, phone: str | None, *, language: str = "en"
    ) -> Customer:
        group_id = self.session.scalars(select(Rooftop.group_id)).first()
        assert group_id is not None
        customer = Customer(group_id=group_id, first_name=first, last_name=last, language=language)
        self.session.add(customer)
        self.session.flush()
        if phone is not None:
            row = self.session.scalar(select(Phone).where(Phone.e164 == phone))
            if row is None:
                row = Phone(group_id=group_id, e164=phone, as_typed=phone, kind="mobile")
                self.session.add(row)
                self.session.flush()
            self.session.add(
                CustomerPhone(customer_id=customer.id, phone_id=row.id, is_primary=True)
            )
            self.session.flush()
        return customer

    def vehicle(
        self, customer: Customer, vin: str | None, label: str = "2021 Toyota RAV4"
    ) -> Vehicle:
        year, make, model = label.split(" ", 2)
        vehicle = Vehicle(
            group_id=customer.group_id,
            vin=vin,
            year=int(year),
            make=make,
            model=model,
            customer_id=customer.id,
        )
        self.session.add(vehicle)
        self.session.flush()
        return vehicle

    def open_ro(
        self,
        slug: str,
        number: str,
        *,
        customer: Customer | None,
        vehicle: Vehicle | None,
        at: datetime,
        lines: Sequence[Line] = (),
        stage: str = "checked_in",
        promised_at: datetime | None = None,
        advisor: tuple[str, str] = ("A7", "Dana Ruiz"),
    ) -> RepairOrder:
        rooftop = self.rooftop(slug)
        ro = RepairOrder(
            rooftop_id=rooftop.id,
            ro_number=number,
            customer_id=customer.id if customer else None,
            vehicle_id=vehicle.id if vehicle else None,
            advisor_ref=advisor[0],
            advisor_name=advisor[1],
            raw_status=stage.upper(),
            stage=stage,
            opened_at=at,
            promised_at=promised_at,
            content_hash=f"{number}-0",
            created_at=at,
            updated_at=at,
        )
        ro.lines = [
            RoLine(
                line_code=ln.code,
                op_code=ln.op_code,
                description=ln.description,
                amount_cents=ln.cents,
                status=ln.status,
                status_changed_at=at,
            )
            for ln in lines
        ]
        self.session.add(ro)
        self.session.flush()
        self.session.add(RoEvent(repair_order_id=ro.id, kind="stage", to_stage=stage, at=at))
        self._emit(
            ro,
            is_new=True,
            previous_stage=None,
            previous_promised_at=None,
            at=at,
            line_changes=tuple(LineChange(line=ln, previous_status=None) for ln in ro.lines),
        )
        return ro

    def move(self, ro: RepairOrder, stage: str, *, at: datetime) -> None:
        previous = ro.stage
        ro.stage = stage
        ro.raw_status = stage.upper()
        if stage == "closed":
            ro.closed_at = at
        self.session.add(
            RoEvent(repair_order_id=ro.id, kind="stage", from_stage=previous, to_stage=stage, at=at)
        )
        self._emit(ro, previous_stage=previous, previous_promised_at=ro.promised_at, at=at)

    def close(self, ro: RepairOrder, *, at: datetime) -> None:
        self.move(ro, "closed", at=at)

    def set_line(self, ro: RepairOrder, code: str, status: str, *, at: datetime) -> None:
        line = next(ln for ln in ro.lines if ln.line_code == code)
        previous = line.status
        line.status = status
        line.status_changed_at = at
        self._emit(
            ro,
            previous_stage=ro.stage,
            previous_promised_at=ro.promised_at,
            at=at,
            line_changes=(LineChange(line=line, previous_status=previous),),
        )

    def promise(self, ro: RepairOrder, promised_at: datetime, *, at: datetime) -> None:
        previous = ro.promised_at
        ro.promised_at = promised_at
        self.session.add(
            RoEvent(
                repair_order_id=ro.id,
                kind="promised",
                detail={"from": previous.isoformat() if previous else None},
                at=at,
            )
        )
        self._emit(ro, previous_stage=ro.stage, previous_promised_at=previous, at=at)

    def reply(self, customer: Customer, body: str, *, at: datetime) -> InboundMessage:
        """A text from the customer (the inbound handler's row, without its intent handling)."""
        self._sid += 1
        message = InboundMessage(
            provider_sid=f"SM{self._sid:032x}",
            channel="sms",
            from_address="+14155550142",
            to_address="+14155550100",
            body=body,
            customer_id=customer.id,
            received_at=at,
        )
        self.session.add(message)
        self.session.flush()
        return message

    def mark_sent(
        self, at: datetime, where: Callable[[OutboundMessage], bool] | None = None
    ) -> int:
        """The dispatcher's part: every pending message goes out at `at`."""
        pending = self.session.scalars(
            select(OutboundMessage).where(OutboundMessage.state == "pending")
        ).all()
        chosen = [m.id for m in pending if where is None or where(m)]
        if chosen:
            self.session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(chosen))
                .values(state="sent", sent_at=at)
            )
        return len(chosen)

    def _emit(
        self,
        ro: RepairOrder,
        *,
        previous_stage: str | None,
        previous_promised_at: datetime | None,
        at: datetime,
        is_new: bool = False,
        line_changes: tuple[LineChange, ...] = (),
    ) -> None:
        self.session.flush()
        change = RepairOrderChange(
            ro=ro,
            rooftop=self.session.get_one(Rooftop, ro.rooftop_id),
            is_new=is_new,
            previous_stage=previous_stage,
            previous_promised_at=previous_promised_at,
            at=at,
            line_changes=line_changes,
        )
        for hook in self.hooks:
            hook(self.session, change)
