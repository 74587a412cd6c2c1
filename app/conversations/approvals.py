"""Approving repair work by text: only on purpose, and kept as the shop's record.

An approval is recorded only when all of these hold:
- the text is a bare YES / SI / OUI (intents.py: no reading of the model approves work);
- it answers a message that named the work and its price: an approval request, a status
  answer saying what waits on approval, or Pitwall's confirmation, sent in the last 48 hours;
- the repair order still waits on the customer's OK for those lines.
Any other yes ("go ahead with the brakes", "ok", "sure, do it") gets that confirmation,
naming every line waiting and the total; a yes with a condition or a question is the
model's `question` and goes to the advisor. Each approval keeps the customer's exact
words, the lines and prices as shown, and the time.
"""

from __future__ import annotations

from app.conversations import intents
from app.conversations.handoff import has_open_conversation, needs_reply
from app.conversations.matching import Candidate, awaiting_approval
from app.conversations.models import Approval
from app.conversations.tasks import open_task
from app.conversations.turn import Turn
from app.dealers.models import Rooftop
from app.messaging.line_names import line_names
from app.messaging.templates import format_money
from app.repair_orders.models import RoLine
from app.repair_orders.write_back import ENTER_NOTE, WRITE_NOTE, queue_answers


def approve_or_confirm(turn: Turn) -> str | None:
    """A yes of any strength: record it if it may be recorded, else confirm or hand over."""
    found = awaiting_approval(turn.session, contact=turn.contact, rooftop=turn.rooftop)
    if not found:
        if turn.intent.label == intents.WEAK_YES:
            return acknowledged(turn)
        return needs_reply(turn, note="said yes, but nothing waits on approval: ")
    if len(found) > 1:
        return needs_reply(turn, note="approval for one of several repair orders: ")
    candidate, lines = found[0]
    if _may_record(turn):
        return record_approval(turn, candidate, lines)
    return _confirm(turn, candidate, lines)


def _may_record(turn: Turn) -> bool:
    """A bare YES to an approval request or to Pitwall's confirmation, while it is fresh."""
    return turn.intent.name == intents.APPROVE and turn.context.fresh_approval_request(turn.now)


def _confirm(turn: Turn, candidate: Candidate, lines: list[RoLine]) -> str:
    """Ask for a plain YES, naming every line waiting and the total."""
    order, customer = candidate.repair_order, candidate.customer
    turn.row.customer_id, turn.row.repair_order_id = customer.id, order.id
    turn.row.reply_kind = "approval_confirm"
    return turn.say(
        "approval_confirm",
        customer,
        lines=line_names([line.description for line in lines], turn.language(customer)),
        total=sum(line.amount_cents for line in lines),
        vehicle=order.vehicle.label if order.vehicle else "",
    )


def record_approval(turn: Turn, candidate: Candidate, lines: list[RoLine]) -> str:
    """Note the customer's OK on the lines, keep the record, ask the advisor to enter it."""
    order, customer = candidate.repair_order, candidate.customer
    for line in lines:
        line.customer_approved_at = turn.now
    turn.row.customer_id, turn.row.repair_order_id = customer.id, order.id
    total = sum(line.amount_cents for line in lines)
    described = ", ".join(line.description for line in lines)
    approval = Approval(
        rooftop_id=order.rooftop_id,
        repair_order_id=order.id,
        customer_id=customer.id,
        channel=turn.row.channel,
        words=turn.row.body,
        lines=[
            {
                "line": line.line_code,
                "op_code": line.op_code,
                "description": line.description,
                "amount_cents": line.amount_cents,
            }
            for line in lines
        ],
        total_cents=total,
        shown="Pitwall's confirmation" if turn.context.confirming else "approval request",
        approved_at=turn.now,
    )
    turn.session.add(approval)
    turn.opened.append(approval)  # gets the message's id once the message is stored
    queued = queue_answers(
        turn.session,
        rooftop=turn.session.get_one(Rooftop, order.rooftop_id),
        ro=order,
        answers=[(line, "approved") for line in lines],
        source=turn.row.channel,
        now=turn.now,
    )
    task = open_task(
        turn.session,
        rooftop_id=order.rooftop_id,
        kind="approval",
        summary=(
            f"{customer.display_name} approved {described} {format_money(total)} by text "
            f'(RO {order.ro_number}): "{turn.row.body[:120]}" — '
            + (WRITE_NOTE if queued else ENTER_NOTE)
        ),
        now=turn.now,
        customer_id=customer.id,
        repair_order_id=order.id,
        advisor_ref=order.advisor_ref,
    )
    assert task is not None  # no dedupe key: always opens (a retried message rolls back whole)
    turn.opened.append(task)
    turn.row.reply_kind = "approved"
    return turn.say(
        "answer_approved",
        customer,
        first_name=customer.first_name or "",
        lines=line_names([line.description for line in lines], turn.language(customer)),
        total=total,
    )


def decline_work(turn: Turn) -> str | None:
    """ "No, just the oil change": the advisor hears which lines the customer turned down."""
    found = awaiting_approval(turn.session, contact=turn.contact, rooftop=turn.rooftop)
    if len(found) == 1:
        candidate, lines = found[0]
        turn.row.repair_order_id = candidate.repair_order.id
        described = ", ".join(line.description for line in lines)
        return needs_reply(
            turn,
            customer=candidate.customer,
            note=f"declined by text (RO {candidate.repair_order.ro_number}: {described}): ",
        )
    return needs_reply(turn, note="declined work by text: ")


def acknowledged(turn: Turn) -> str | None:
    """ "ok thanks": nothing to answer; it joins an open conversation if there is one."""
    customer = turn.contact.only_customer
    if has_open_conversation(turn, customer):
        return needs_reply(turn, customer=customer)  # joins: no second acknowledgement
    return None
