"""the technician's note on a repair line, from the DMS (issue 28)

CDK's line.cause/storyText, Dealertrack's further detail Comments and the REST
bridge's optional lines[].note land here; the customer's page shows them beside
the line's price. Nullable: lines read before this revision simply have none.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("ro_line", sa.Column("note", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ro_line") as batch:
        batch.drop_column("note")
