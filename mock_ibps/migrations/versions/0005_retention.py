"""Retention: carried-forward entries and the first business date kept

Revision ID: 0005_retention
Revises: 0004_sandbox_clock
Create Date: 2026-12-16

mock_ibps's retention job (`mock_ibps.retention`) deletes the payments' transfers of business dates
past its retention. What they moved stays in every account's balance as one CARRIED transfer per
account, against the funding account, so the ledger still sums to zero and every cached balance
still equals the postings. `retention_horizon` holds the first business date kept: the statements
of earlier dates are refused rather than shown half gone.

Downgrading a ledger that has carried entries stops at the kind check: they hold balances that the
purged transfers moved.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_retention"
down_revision: str | None = "0004_sandbox_clock"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND = "ck_transfers_kind"


def upgrade() -> None:
    op.drop_constraint(op.f(KIND), "transfers", type_="check")
    op.create_check_constraint(
        op.f(KIND), "transfers", "kind IS NULL OR kind IN ('OPENING', 'CREDIT', 'DEBIT', 'CARRIED')"
    )
    op.create_table(
        "retention_horizon",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("kept_from", sa.Date(), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_retention_horizon_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_horizon")),
    )
    op.execute("INSERT INTO retention_horizon (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("retention_horizon")
    op.drop_constraint(op.f(KIND), "transfers", type_="check")
    op.create_check_constraint(
        op.f(KIND), "transfers", "kind IS NULL OR kind IN ('OPENING', 'CREDIT', 'DEBIT')"
    )
