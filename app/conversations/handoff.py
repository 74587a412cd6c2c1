"""Texts a person answers: the advisor inbox, new contacts, and "which vehicle?" questions."""

from __future__ import annotations

from app.conversations.intents import LABELS
from app.conversations.matching import Candidate, Contact, can_ask_which, candidates, choice_of
from app.conversations.tasks import Conversation, attach_to_conversation
from app.conversations.texts import closed_until_words, language_of, say
from app.conversations.turn import Turn
from app.customers.models import Customer

_LABEL_WORDS = {label: label.replace("_", " ") for label in LABELS}


def guesses_line(turn: Turn) -> str:
    """The model's best guesses for the advisor, when it was not sure: " (guess: ...)"."""
    if turn.intent.name != "unsure" or not turn.intent.guesses:
        return ""
    named = ", ".join(
        f"{_LABEL_WORDS.get(label, label)} {probability:.0%}"
        for label, probability in turn.intent.guesses
    )
    return f" (Pitwall was unsure: {named})"


def needs_reply(
    turn: Turn,
    *,
    kind: str = "needs_reply",
    customer: Customer | None = None,
    none_open: bool = False,
    note: str = "",
) -> str | None:
    """Hand the message to the advisor inbox; acknowledge only the first of a conversation.

    `none_open`: the caller already found no open RO for the phone's customers. `note`
    goes before the customer's words in the task ("wants to book", "declined ...").
    """
    customer = customer or turn.contact.only_customer
    advisor_ref = advisor_name = None
    if customer is not None and not none_open:
        # The customer is one of the phone's unless a pending question named one since unlinked.
        known = any(c.id == customer.id for c in turn.contact.customers)
        contact = turn.contact if known else Contact(turn.contact.phone, [customer])
        open_here = [
            c
            for c in candidates(
                turn.session, contact=contact, rooftop=turn.rooftop, customer=customer
            )
            if c.repair_order.rooftop_id == turn.rooftop.id
        ]
        if open_here:
            advisor_ref = open_here[0].repair_order.advisor_ref
            advisor_name = open_here[0].repair_order.advisor_name
    who = customer.display_name if customer else f"{turn.contact.phone.e164} (shared phone)"
    opened = attach(
        turn,
        customer=customer,
        kind=kind,
        summary=f"{who}: {note}{turn.row.body[:200]}{guesses_line(turn)}",
        advisor_ref=advisor_ref,
    )
    if not opened:
        return None
    opening = _closed_until(turn)
    if opening is not None:
        # At 1:54 AM on a Sunday nobody "will reply shortly": say when someone will.
        return turn.say(
            "answer_received_closed", customer, advisor=advisor_name or "", opens=opening
        )
    return turn.say("answer_received", customer, advisor=advisor_name or "")


def _closed_until(turn: Turn) -> str | None:
    """When the store opens (skipping holidays), in words, if it is closed now."""
    return closed_until_words(turn.rooftop, now=turn.now, language=turn.language())


def unknown_contact(turn: Turn) -> str | None:
    opened = attach(
        turn,
        customer=turn.contact.only_customer,
        kind="unknown_contact",
        summary=f"New contact {turn.contact.phone.e164}: {turn.row.body[:200]}",
    )
    if not opened:
        return None
    return turn.say("unknown_contact", opens=_closed_until(turn) or "")


def ask_which(turn: Turn, options: list[Candidate]) -> str | None:
    """Several vehicles fit: ask by model name, or hand it to an advisor when that cannot work."""
    if can_ask_which(options):
        turn.row.pending_choices = [choice_of(o) for o in options]
        language = language_of(turn.hint, turn.rooftop.settings.language)
        return say(
            turn.rooftop,
            "household_question",
            language=language,
            choices=[o.vehicle_label for o in options],
        )
    return needs_reply(turn, kind="household")


def has_open_conversation(turn: Turn, customer: Customer | None) -> bool:
    known = turn.contact.conversations
    return customer is not None and bool(known and known.get(customer.id))


def attach(
    turn: Turn,
    *,
    customer: Customer | None,
    kind: str,
    summary: str,
    advisor_ref: str | None = None,
) -> bool:
    """Join the message to its conversation task, or open one; True when opened."""
    known = turn.contact.conversations
    return attach_to_conversation(
        turn.session,
        rooftop=turn.rooftop,
        phone=turn.contact.phone,
        customer=customer,
        kind=kind,
        summary=summary,
        now=turn.now,
        repair_order_id=turn.row.repair_order_id,
        advisor_ref=advisor_ref,
        # The contact lookup read each customer's open conversation here: no second query.
        found=(
            Conversation(known[customer.id])
            if customer is not None and known is not None and customer.id in known
            else None
        ),
        # A task opened (or a summary changed) here is written with the message itself.
        held=turn.held,
    )
