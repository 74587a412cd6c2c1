"""customers' answers written back into the DMS (issue 28): the dms_write queue

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dms_write",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rooftop_id", sa.Integer(), nullable=False),
        sa.Column("repair_order_id", sa.Integer(), nullable=False),
        sa.Column("ro_number", sa.String(length=40), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("written_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["repair_order_id"],
            ["repair_order.id"],
            name=op.f("fk_dms_write_repair_order_id_repair_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rooftop_id"], ["rooftop.id"], name=op.f("fk_dms_write_rooftop_id_rooftop")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dms_write")),
    )
    op.create_index("ix_dms_write_due", "dms_write", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dms_write_due", table_name="dms_write")
    op.drop_table("dms_write")
