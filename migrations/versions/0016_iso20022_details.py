"""pacs.008: each transaction's place in its message, and what a bank sent beyond the payment

Revision ID: 0016_iso20022_details
Revises: 0015_retention
Create Date: 2026-12-18

A pacs.008 may carry several transactions, each paid as a payment of its own. `position` is a
transaction's place in its message (from 1; the rows written before were messages of one), so that
a status request naming the message answers its transactions in the message's order.

`iso20022_details` keeps, by payment id, what the bank sent with a pacs.008 transaction beyond the
payment itself: its references, the purpose as written, every RmtInf/Ustrd line and RmtInf/Strd
element (JSON arrays of text) and InstdAmt. The `payments` table is unchanged: a JSON payment has
no such row. Retention purges a row with its payment.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_iso20022_details"
down_revision: str | Sequence[str] | None = "0015_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "iso20022_transactions",
        sa.Column("position", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
    )
    op.create_table(
        "iso20022_details",
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("message_name", sa.String(length=35), nullable=False),
        sa.Column("msg_id", sa.String(length=35), nullable=False),
        sa.Column("instr_id", sa.String(length=35), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("tx_id", sa.String(length=35), nullable=True),
        sa.Column("uetr", sa.String(length=36), nullable=True),
        sa.Column("purpose_code", sa.String(length=4), nullable=True),
        sa.Column("purpose_proprietary", sa.String(length=35), nullable=True),
        sa.Column("remittance_unstructured", sa.Text(), nullable=False),
        sa.Column("remittance_structured", sa.Text(), nullable=False),
        sa.Column("instructed_amount", sa.String(length=32), nullable=True),
        sa.Column("instructed_currency", sa.String(length=3), nullable=True),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_iso20022_details")),
    )


def downgrade() -> None:
    op.drop_table("iso20022_details")
    op.drop_column("iso20022_transactions", "position")
