"""Retention: carried-forward ledger entries, purged usage, the kept horizon, quotes by age

Revision ID: 0015_retention
Revises: 0014_certification
Create Date: 2026-12-16

The retention job (`fpslink.retention`, docs/decisions/0007-retention.md) deletes payments, their
FPS transfers and timelines once their business date is past the retention period:

- `ledger_transfers.kind` admits CARRIED: the balance purged postings brought to an account, as
  one posted transfer between it and its currency's funding account, so that every balance, and
  the sum per currency, stays what the postings gave;
- `limit_usage_carried`: what purged payments reserved on each usage row, for invariant I5;
- `retention_horizon`: one row, the first business date kept, which reconciliation checks;
- `ix_quotes_created`: quotes are deleted by age, a bounded index range at a time.

The kind check is replaced in one pass over `ledger_transfers`, which holds nothing it refuses.
Downgrading a ledger that has carried entries stops at that check: they hold balances that the
purged payments moved, and dropping them would break I1.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_retention"
down_revision: str | Sequence[str] | None = "0014_certification"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND = "ck_ledger_transfers_kind"


def upgrade() -> None:
    op.drop_constraint(op.f(KIND), "ledger_transfers", type_="check")
    op.create_check_constraint(
        op.f(KIND), "ledger_transfers", "kind IN ('OPENING', 'DEBIT', 'CREDIT', 'CARRIED')"
    )
    op.create_table(
        "limit_usage_carried",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("period_key", sa.String(length=10), nullable=False),
        sa.Column("carried_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "direction", "period", "period_key", name=op.f("pk_limit_usage_carried")
        ),
    )
    op.create_table(
        "retention_horizon",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("kept_from", sa.String(length=10), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_retention_horizon_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_horizon")),
    )
    op.execute("INSERT INTO retention_horizon (id) VALUES (1)")
    op.create_index("ix_quotes_created", "quotes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_quotes_created", table_name="quotes")
    op.drop_table("retention_horizon")
    op.drop_table("limit_usage_carried")
    op.drop_constraint(op.f(KIND), "ledger_transfers", type_="check")
    op.create_check_constraint(op.f(KIND), "ledger_transfers", "kind IN ('OPENING', 'DEBIT', 'CREDIT')")
