"""Indexes for finding payments by creditor account and keys by payment

Revision ID: 0005_indexes
Revises: 0003_webhooks
Create Date: 2026-11-27

The console searches payments by creditor account and shows a payment's Idempotency-Key; both
scanned their tables without these.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_indexes"
down_revision: str | None = "0003_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_payments_creditor_account", "payments", ["creditor_account_id"])
    op.create_index("ix_idempotency_keys_payment_id", "idempotency_keys", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_payment_id", table_name="idempotency_keys")
    op.drop_index("ix_payments_creditor_account", table_name="payments")
