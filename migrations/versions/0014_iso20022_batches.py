"""pacs.008 messages of several transactions: each transaction's place in its message

Revision ID: 0014_iso20022_batches
Revises: 0013_iso20022_transactions
Create Date: 2026-12-18

A pacs.008 may carry several transactions, each paid as a payment of its own. `position` is a
transaction's place in its message (from 1; the rows written before were messages of one), so that
a status request naming the message answers its transactions in the message's order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_iso20022_batches"
down_revision: str | Sequence[str] | None = "0013_iso20022_transactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "iso20022_transactions",
        sa.Column("position", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("iso20022_transactions", "position")
