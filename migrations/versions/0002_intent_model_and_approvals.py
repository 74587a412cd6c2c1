"""intent model fields, approval records, texts language

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 11:33:44.248734
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rooftop_id", sa.Integer(), nullable=False),
        sa.Column("repair_order_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("words", sa.Text(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("shown", sa.Text(), nullable=True),
        sa.Column("approved_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_approval_customer_id_customer"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_message.id"],
            name=op.f("fk_approval_inbound_message_id_inbound_message"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
            name=op.f("fk_approval_repair_order_id_repair_order"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rooftop_id"], ["rooftop.id"], name=op.f("fk_approval_rooftop_id_rooftop")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval")),
    )
    op.create_index("ix_approval_ro", "approval", ["repair_order_id"], unique=False)

    # Plain ADD COLUMNs: SQLite adds each in place, with no copy of a busy table.
    op.add_column("customer", sa.Column("texts_language", sa.String(length=5), nullable=True))
    for column in (
        sa.Column("intent_label", sa.String(length=20), nullable=True),
        sa.Column("intent_confidence", sa.Float(), nullable=True),
        sa.Column("intent_guesses", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("reply_to", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("reply_kind", sa.String(length=30), nullable=True),
        sa.Column("corrected_intent", sa.String(length=20), nullable=True),
        sa.Column("corrected_by", sa.String(length=254), nullable=True),
        sa.Column("corrected_at", app.db.UTCDateTime(timezone=True), nullable=True),
    ):
        op.add_column("inbound_message", column)


def downgrade() -> None:
    with op.batch_alter_table("inbound_message", schema=None) as batch_op:
        for name in (
            "corrected_at",
            "corrected_by",
            "corrected_intent",
            "reply_kind",
            "language",
            "reply_to",
            "intent_guesses",
            "intent_confidence",
            "intent_label",
        ):
            batch_op.drop_column(name)
    op.drop_column("customer", "texts_language")
    op.drop_index("ix_approval_ro", table_name="approval")
    op.drop_table("approval")
