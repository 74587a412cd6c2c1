"""admin editing (issue 31): audit log, user names and DMS advisor ids

Status map, templates and store hours live in rooftop.config (the validated TOML
document), so editing them needs no new columns; the audit log says who changed what.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("app_user", sa.Column("name", sa.String(length=200), nullable=True))
    op.add_column("app_user", sa.Column("dms_advisor_id", sa.String(length=64), nullable=True))
    op.create_table(
        "admin_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"], ["dealer_group.id"], name=op.f("fk_admin_change_group_id_dealer_group")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_change")),
    )
    op.create_index("ix_admin_change_group_at", "admin_change", ["group_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_admin_change_group_at", table_name="admin_change")
    op.drop_table("admin_change")
    op.drop_column("app_user", "dms_advisor_id")
    op.drop_column("app_user", "name")
