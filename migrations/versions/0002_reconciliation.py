"""reconciliation runs and breaks

Revision ID: 0002_recon
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_recon"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recon_runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("business_date", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("break_count", sa.BigInteger(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_recon_runs")),
    )
    with op.batch_alter_table("recon_runs", schema=None) as batch_op:
        batch_op.create_index("ix_recon_runs_business_date", ["business_date"], unique=False)

    op.create_table(
        "recon_breaks",
        sa.Column(
            "seq",
            sa.BigInteger(),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("break_type", sa.String(length=20), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=True),
        sa.Column("gateway_state", sa.String(length=10), nullable=True),
        sa.Column("amount_type", sa.String(length=8), nullable=True),
        sa.Column("source_minor", sa.BigInteger(), nullable=True),
        sa.Column("source_currency", sa.String(length=3), nullable=True),
        sa.Column("target_minor", sa.BigInteger(), nullable=True),
        sa.Column("target_currency", sa.String(length=3), nullable=True),
        sa.Column("rate", sa.String(length=24), nullable=True),
        sa.Column("fps_status", sa.String(length=8), nullable=True),
        sa.Column("fps_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("fps_currency", sa.String(length=3), nullable=True),
        sa.Column("ibps_status", sa.String(length=8), nullable=True),
        sa.Column("ibps_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("ibps_currency", sa.String(length=3), nullable=True),
        sa.Column("related_payment_id", sa.String(length=36), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_recon_breaks")),
    )
    with op.batch_alter_table("recon_breaks", schema=None) as batch_op:
        batch_op.create_index("ix_recon_breaks_run_seq", ["run_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recon_breaks", schema=None) as batch_op:
        batch_op.drop_index("ix_recon_breaks_run_seq")
    op.drop_table("recon_breaks")
    with op.batch_alter_table("recon_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_recon_runs_business_date")
    op.drop_table("recon_runs")
