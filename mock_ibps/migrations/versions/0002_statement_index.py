"""An index on transfers.created_at for the statement export of a business date

Revision ID: 0002_statement_index
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_statement_index"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_transfers_created_at", "transfers", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_transfers_created_at", table_name="transfers")
