"""An index on ledger_transfers.created_at for reconciliation's day of FPS entries

Revision ID: 0004_recon_perf
Revises: 0002_recon
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_recon_perf"
down_revision: str | None = "0002_recon"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_transfers_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_created")
