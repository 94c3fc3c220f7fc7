"""The pacs.008 transactions banks sent, by their references (UETR unique per bank)

Revision ID: 0013_iso20022_transactions
Revises: 0012_api_keys
Create Date: 2026-12-16

`iso20022_transactions` keeps, for each pacs.008 transaction taken for payment, the sending bank's
references (MsgId, message name, InstrId, EndToEndId, TxId, UETR), the message's fingerprint, the
idempotency key it was paid under and the payment. A UETR is unique per sending bank: a second
message with it is refused DUPL, the same message again answers its payment's report. A pacs.028
finds the payment by UETR, MsgId or ClrSysRef, among the asking bank's rows only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_iso20022_transactions"
down_revision: str | Sequence[str] | None = "0012_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "iso20022_transactions",
        sa.Column("record_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("uetr", sa.String(length=36), nullable=True),
        sa.Column("msg_id", sa.String(length=35), nullable=False),
        sa.Column("message_name", sa.String(length=35), nullable=False),
        sa.Column("instr_id", sa.String(length=35), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("tx_id", sa.String(length=35), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_iso20022_transactions")),
        sa.UniqueConstraint("participant_id", "uetr", name=op.f("uq_iso20022_transactions_participant_id")),
    )
    op.create_index(
        "ix_iso20022_transactions_participant_msg",
        "iso20022_transactions",
        ["participant_id", "msg_id"],
        unique=False,
    )
    op.create_index(
        "ix_iso20022_transactions_payment_id", "iso20022_transactions", ["payment_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_iso20022_transactions_payment_id", table_name="iso20022_transactions")
    op.drop_index("ix_iso20022_transactions_participant_msg", table_name="iso20022_transactions")
    op.drop_table("iso20022_transactions")
