"""What a bank sent with a payment that came as an ISO 20022 pacs.008, kept with its transfer

Revision ID: 0006_transfer_references
Revises: 0005_retention
Create Date: 2026-12-18

The gateway's prepare of such a payment carries its references (MsgId, InstrId, EndToEndId, TxId,
UETR), purpose, remittance (Ustrd lines, Strd as XML) and the amount the bank instructed with the
conversion; the prepare that records the transfer keeps them here, by payment id, and the camt.053
statement gives them back. Other payments have no row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_transfer_references"
down_revision: str | None = "0005_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transfer_references",
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("msg_id", sa.String(length=35), nullable=True),
        sa.Column("instr_id", sa.String(length=35), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("tx_id", sa.String(length=35), nullable=True),
        sa.Column("uetr", sa.String(length=36), nullable=True),
        sa.Column("purpose_code", sa.String(length=4), nullable=True),
        sa.Column("purpose_proprietary", sa.String(length=35), nullable=True),
        sa.Column("unstructured", sa.Text(), nullable=False),
        sa.Column("structured", sa.Text(), nullable=False),
        sa.Column("instructed_amount", sa.String(length=32), nullable=False),
        sa.Column("instructed_currency", sa.String(length=3), nullable=False),
        sa.Column("source_currency", sa.String(length=3), nullable=True),
        sa.Column("target_currency", sa.String(length=3), nullable=True),
        sa.Column("rate", sa.String(length=24), nullable=True),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_transfer_references")),
    )


def downgrade() -> None:
    op.drop_table("transfer_references")
