"""the outbox's due index carries the claim's whole sort key: (state, not_before, id)

A claim reads the oldest due rows (`ORDER BY not_before, id LIMIT n`). With the id in
the index PostgreSQL walks it in that order and stops at the limit; on (state,
not_before) alone it sorted every due row on a small table (a claim of one row sorted
a thousand). The index is replaced, not added: the write path keeps one due index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_message") as batch:
        batch.drop_index("ix_outbound_message_due")
        batch.create_index("ix_outbound_message_due", ["state", "not_before", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbound_message") as batch:
        batch.drop_index("ix_outbound_message_due")
        batch.create_index("ix_outbound_message_due", ["state", "not_before"], unique=False)
