"""the customer's page (issue 28): links, page approvals, bookings, photos

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# New tables only: nothing released changes (no ALTER of an existing table).
TABLES = (
    "customer_line_answer",
    "customer_page_visit",
    "customer_page_answer",
    "booking",
    "ro_line_photo",
    "ro_line_note",
    "customer_link",
)


def upgrade() -> None:
    op.create_table(
        "customer_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("rooftop_id", sa.Integer(), nullable=False),
        sa.Column("repair_order_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("outbound_message_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=12), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_opened_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_opened_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("open_count", sa.Integer(), nullable=False),
        sa.Column("revoked_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=254), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_link_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbound_message_id"],
            ["outbound_message.id"],
            name=op.f("fk_customer_link_outbound_message_id_outbound_message"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
            name=op.f("fk_customer_link_repair_order_id_repair_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rooftop_id"], ["rooftop.id"], name=op.f("fk_customer_link_rooftop_id_rooftop")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_customer_link_token_hash")),
    )
    op.create_index(
        op.f("ix_customer_link_outbound_message_id"),
        "customer_link",
        ["outbound_message_id"],
        unique=False,
    )
    op.create_index("ix_customer_link_ro", "customer_link", ["repair_order_id"], unique=False)
    op.create_table(
        "ro_line_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ro_line_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=254), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ro_line_id"],
            ["ro_line.id"],
            name=op.f("fk_ro_line_note_ro_line_id_ro_line"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ro_line_note")),
    )
    op.create_index(
        op.f("ix_ro_line_note_ro_line_id"), "ro_line_note", ["ro_line_id"], unique=False
    )
    op.create_table(
        "ro_line_photo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ro_line_id", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=80), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=254), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ro_line_id"],
            ["ro_line.id"],
            name=op.f("fk_ro_line_photo_ro_line_id_ro_line"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ro_line_photo")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_ro_line_photo_storage_key")),
    )
    op.create_index(
        op.f("ix_ro_line_photo_ro_line_id"), "ro_line_photo", ["ro_line_id"], unique=False
    )
    op.create_table(
        "booking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rooftop_id", sa.Integer(), nullable=False),
        sa.Column("repair_order_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("slot_start", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seat", sa.Integer(), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_booking_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["customer_link.id"],
            name=op.f("fk_booking_link_id_customer_link"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
            name=op.f("fk_booking_repair_order_id_repair_order"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rooftop_id"], ["rooftop.id"], name=op.f("fk_booking_rooftop_id_rooftop")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_booking_task_id_task"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
        sa.UniqueConstraint(
            "rooftop_id", "slot_start", "seat", name=op.f("uq_booking_rooftop_id_slot_start_seat")
        ),
    )
    op.create_index(
        op.f("ix_booking_repair_order_id"), "booking", ["repair_order_id"], unique=False
    )
    op.create_index(
        "ix_booking_rooftop_created", "booking", ["rooftop_id", "created_at"], unique=False
    )
    op.create_table(
        "customer_page_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rooftop_id", sa.Integer(), nullable=False),
        sa.Column("repair_order_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("approved_cents", sa.Integer(), nullable=False),
        sa.Column("declined_cents", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("requested_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_page_answer_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["customer_link.id"],
            name=op.f("fk_customer_page_answer_link_id_customer_link"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
            name=op.f("fk_customer_page_answer_repair_order_id_repair_order"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rooftop_id"], ["rooftop.id"], name=op.f("fk_customer_page_answer_rooftop_id_rooftop")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_customer_page_answer_task_id_task"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_page_answer")),
    )
    op.create_index(
        "ix_customer_page_answer_ro", "customer_page_answer", ["repair_order_id"], unique=False
    )
    op.create_table(
        "customer_page_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rooftop_id", sa.Integer(), nullable=False),
        sa.Column("repair_order_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("first_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_page_visit_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["customer_link.id"],
            name=op.f("fk_customer_page_visit_link_id_customer_link"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
            name=op.f("fk_customer_page_visit_repair_order_id_repair_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rooftop_id"], ["rooftop.id"], name=op.f("fk_customer_page_visit_rooftop_id_rooftop")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_page_visit")),
        sa.UniqueConstraint(
            "repair_order_id",
            "customer_id",
            "day",
            name=op.f("uq_customer_page_visit_repair_order_id_customer_id_day"),
        ),
    )
    op.create_index(
        op.f("ix_customer_page_visit_rooftop_id"),
        "customer_page_visit",
        ["rooftop_id"],
        unique=False,
    )
    op.create_table(
        "customer_line_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ro_line_id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["customer_page_answer.id"],
            name=op.f("fk_customer_line_answer_answer_id_customer_page_answer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ro_line_id"],
            ["ro_line.id"],
            name=op.f("fk_customer_line_answer_ro_line_id_ro_line"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_line_answer")),
        sa.UniqueConstraint("ro_line_id", name=op.f("uq_customer_line_answer_ro_line_id")),
    )
    op.create_index(
        op.f("ix_customer_line_answer_answer_id"),
        "customer_line_answer",
        ["answer_id"],
        unique=False,
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
