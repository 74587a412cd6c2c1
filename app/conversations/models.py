"""Inbound messages, calls, and the tasks they create for people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class InboundMessage(Base):
    """Stored first under its unique MessageSid, then handled once."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        Index("ix_inbound_message_customer_at", "customer_id", "received_at"),
        Index("ix_inbound_message_rooftop_at", "rooftop_id", "received_at"),
        Index("ix_inbound_message_phone_at", "phone_id", "received_at"),
        # A phone's pending "which vehicle?" question, looked up on every inbound text: only
        # the few rows that ask one, so the lookup never walks a busy rooftop's day of texts.
        Index(
            "ix_inbound_message_pending",
            "phone_id",
            "id",
            postgresql_where=text("pending_choices IS NOT NULL"),
            sqlite_where=text("pending_choices IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str] = mapped_column(String(34), unique=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("dealer_group.id"))
    rooftop_id: Mapped[int | None] = mapped_column(ForeignKey("rooftop.id"))
    channel: Mapped[str] = mapped_column(String(10))
    from_address: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text, default="")
    num_media: Mapped[int] = mapped_column(Integer, default=0)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phone.id", ondelete="SET NULL"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )
    # What Pitwall acted on (a label, confirm_approval or unsure), the model's own label, its
    # probability, its best three guesses, and what the phone had last been sent (the context).
    intent: Mapped[str | None] = mapped_column(String(20))
    intent_label: Mapped[str | None] = mapped_column(String(20))
    intent_confidence: Mapped[float | None] = mapped_column(Float)
    intent_guesses: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    reply_to: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(5))  # detected; None when unsure
    reply_body: Mapped[str | None] = mapped_column(Text)
    # What the reply was (status_answer, approval_confirm, clarify, ...): the next text's context.
    reply_kind: Mapped[str | None] = mapped_column(String(30))
    # An advisor's correction of what the text meant, kept for `pitwall intents export`.
    corrected_intent: Mapped[str | None] = mapped_column(String(20))
    corrected_by: Mapped[str | None] = mapped_column(String(254))  # the advisor's email
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A household phone asked "which vehicle?": the choices offered, until the answer comes.
    # none_as_null: None is SQL NULL (no question pending), never the JSON value null.
    pending_choices: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Call(Base):
    __tablename__ = "call"
    __table_args__ = (Index("ix_call_rooftop_started", "rooftop_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), unique=True)
    rooftop_id: Mapped[int | None] = mapped_column(ForeignKey("rooftop.id"))
    from_address: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )
    status_told: Mapped[bool] = mapped_column(Boolean, default=False)
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False)
    after_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    # answered | missed | status_only | after_hours (null while in progress)
    outcome: Mapped[str | None] = mapped_column(String(20))
    dial_status: Mapped[str | None] = mapped_column(String(20))
    dial_duration_s: Mapped[int | None] = mapped_column(Integer)
    # The TwiML first answered, returned again when Twilio retries the same CallSid.
    answer_twiml: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Task(Base):
    """Work for a person: call back, reply, act on an approval, set a new promised time."""

    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_rooftop_state_created", "rooftop_id", "state", "created_at"),
        # A customer's open conversation, looked up on every inbound text that needs a person.
        Index("ix_task_customer_state", "customer_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int | None] = mapped_column(ForeignKey("rooftop.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )
    inbound_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_message.id", ondelete="SET NULL")
    )
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    # callback | needs_reply | approval | promise_late | stuck_stage | unknown_contact | household
    kind: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    assigned_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    advisor_ref: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Approval(Base):
    """A customer's approval of repair lines: their exact words, and the lines as shown.

    The record a shop keeps under state repair-authorisation rules: who approved what, at
    what price, when, in which words and through which channel.
    """

    __tablename__ = "approval"
    __table_args__ = (Index("ix_approval_ro", "repair_order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rooftop_id: Mapped[int] = mapped_column(ForeignKey("rooftop.id"))
    repair_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    inbound_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_message.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(String(10))  # sms | whatsapp
    words: Mapped[str] = mapped_column(Text)  # the customer's message, exactly as received
    # [{"line": "A", "op_code": ..., "description": ..., "amount_cents": ...}], as shown.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_cents: Mapped[int] = mapped_column(Integer)
    # What the customer had been shown: the approval request, or Pitwall's confirmation.
    shown: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime)
