"""followup holdout: each plan's draw and the percent in force; a key per group for the draw

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 12:13:39.758491
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite adds each in place, with no copy of a busy table.
    op.add_column("dealer_group", sa.Column("holdout_key", sa.String(length=64), nullable=True))
    # Plans made before this revision had no draw: followed up, holdout_percent 0, and left
    # out of the followed-against-held-out comparison.
    op.add_column(
        "followup_plan",
        sa.Column("holdout", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "followup_plan",
        sa.Column("holdout_percent", sa.Integer(), server_default="0", nullable=False),
    )
    # Every existing group gets its own random key now, so no draw ever waits for one.
    group = sa.table("dealer_group", sa.column("id", sa.Integer), sa.column("holdout_key"))
    connection = op.get_bind()
    for (group_id,) in connection.execute(sa.select(group.c.id)).all():
        connection.execute(
            group.update()
            .where(group.c.id == group_id)
            .values(holdout_key=secrets.token_hex(32))
        )


def downgrade() -> None:
    with op.batch_alter_table("followup_plan", schema=None) as batch_op:
        batch_op.drop_column("holdout_percent")
        batch_op.drop_column("holdout")
    with op.batch_alter_table("dealer_group", schema=None) as batch_op:
        batch_op.drop_column("holdout_key")
