"""One inbound text being answered, and what the phone had last been sent (its context)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.conversations.intents import Intent
from app.conversations.matching import Contact, LastSent
from app.conversations.models import Approval, InboundMessage, Task
from app.conversations.tasks import HeldWrites
from app.conversations.texts import language_of, say
from app.customers.models import Customer
from app.dealers.models import Rooftop

# How long a message stays what the customer is replying to.
CONTEXT_WINDOW = timedelta(days=3)
FOLLOWUP_WINDOW = timedelta(days=30)
# An approval request older than this only ever gets a confirmation, however clear the yes.
APPROVAL_FRESH = timedelta(hours=48)

# The message's template (or kind) -> what the customer is replying to (intent_model.REPLY_TO).
_TEMPLATE_CONTEXT = {
    "checked_in": "checked_in",
    "in_repair": "in_repair",
    "awaiting_approval": "approval_request",
    "awaiting_parts": "parts_delay",
    "running_late": "parts_delay",
    "new_promised_time": "parts_delay",
    "ready_for_pickup": "ready",
    "followup": "followup",
    "textback": "textback",
}
# Pitwall's own answers (InboundMessage.reply_kind) that set the next text's context.
_ANSWER_CONTEXT = {"status_answer": "status_answer", "approval_confirm": "approval_request"}


@dataclass(frozen=True)
class ReplyContext:
    """What the customer is answering: a REPLY_TO kind, when it was sent, and how."""

    reply_to: str = "none"
    at: datetime | None = None
    confirming: bool = False  # Pitwall's own "Reply YES to approve ..." was the last word
    previous_language: str | None = None  # the language of the phone's previous text

    def fresh_approval_request(self, now: datetime) -> bool:
        return (
            self.reply_to == "approval_request"
            and self.at is not None
            and now - self.at <= APPROVAL_FRESH
        )


def reply_context(last: LastSent | None, *, now: datetime) -> ReplyContext:
    """The context of an inbound text from what the contact lookup read."""
    if last is None:
        return ReplyContext()
    answer_kind, _, previous_language = (last.answer or "").partition("|")
    candidates: list[tuple[datetime, str, bool]] = []
    if last.outbound and last.outbound_at is not None:
        kind, _stage, template = [*last.outbound.split("|"), "", ""][:3]
        name = template.split(".")[0] if template else kind
        if name in _TEMPLATE_CONTEXT:
            candidates.append((last.outbound_at, _TEMPLATE_CONTEXT[name], False))
    if answer_kind in _ANSWER_CONTEXT and last.answer_at is not None:
        candidates.append(
            (last.answer_at, _ANSWER_CONTEXT[answer_kind], answer_kind == "approval_confirm")
        )
    language = previous_language or None
    if not candidates:
        return ReplyContext(previous_language=language)
    at, reply_to, confirming = max(candidates, key=lambda c: c[0])
    window = FOLLOWUP_WINDOW if reply_to == "followup" else CONTEXT_WINDOW
    if now - at > window:
        return ReplyContext(previous_language=language)
    return ReplyContext(reply_to, at, confirming, language)


@dataclass
class Turn:
    """One inbound message being answered."""

    session: Session
    row: InboundMessage
    rooftop: Rooftop
    contact: Contact
    now: datetime
    intent: Intent
    context: ReplyContext
    twilio_replied: bool  # Twilio itself answered this STOP/START/HELP (app/customers/carrier.py)
    # Tasks and approvals made for this message: they get its id once it is stored.
    opened: list[Task | Approval]
    # Its conversation task's writes, held to go out with the message's own INSERT.
    held: HeldWrites

    @property
    def hint(self) -> str | None:
        """The language the text is in, when it could be told."""
        return self.intent.language

    def language(self, customer: Customer | None = None) -> str:
        customer = customer or self.contact.only_customer
        return language_of(
            self.hint,
            customer.preferred_language if customer else None,
            self.rooftop.settings.language,
        )

    def say(self, name: str, customer: Customer | None = None, **context: object) -> str:
        return say(self.rooftop, name, language=self.language(customer), **context)
