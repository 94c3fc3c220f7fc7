"""Initial IBPS ledger: participants, accounts, proxies, transfers, and the two scheme accounts.

Revision ID: 0001
Revises:
Create Date: 2025-11-27
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_ACCOUNT_ID = "IBPS-LINK-CNY"
FUNDING_ACCOUNT_ID = "IBPS-FUNDING-CNY"


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("participant_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(140), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", name="pk_participants"),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("participant_id", sa.String(40), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("holder_name", sa.String(140), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_accounts"),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name="fk_accounts_participant_id_participants",
        ),
        sa.CheckConstraint("kind IN ('CUSTOMER', 'LINK', 'FUNDING')", name=op.f("ck_accounts_kind")),
        sa.CheckConstraint(
            "kind <> 'CUSTOMER' OR (held_minor >= 0 AND held_minor <= balance_minor)",
            name=op.f("ck_accounts_held_within_balance"),
        ),
        sa.CheckConstraint(
            "kind = 'CUSTOMER' OR (balance_minor = 0 AND held_minor = 0)",
            name=op.f("ck_accounts_system_balance_derived"),
        ),
    )
    op.create_table(
        "proxies",
        sa.Column("proxy_value", sa.String(16), nullable=False),
        sa.Column("proxy_type", sa.String(8), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("proxy_value", name="pk_proxies"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.account_id"], name="fk_proxies_account_id_accounts"
        ),
    )
    op.create_index("ix_proxies_account_id", "proxies", ["account_id"])
    op.create_table(
        "transfers",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("transfer_id", sa.String(36), nullable=False),
        sa.Column("payment_id", sa.String(36), nullable=True),
        sa.Column("kind", sa.String(8), nullable=True),
        sa.Column("account_id", sa.String(40), nullable=True),
        sa.Column("debit_account_id", sa.String(40), nullable=True),
        sa.Column("credit_account_id", sa.String(40), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_transfers"),
        sa.UniqueConstraint("transfer_id", name="uq_transfers_transfer_id"),
        sa.UniqueConstraint("payment_id", name="uq_transfers_payment_id"),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["accounts.account_id"],
            name="fk_transfers_debit_account_id_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["accounts.account_id"],
            name="fk_transfers_credit_account_id_accounts",
        ),
        sa.CheckConstraint(
            "kind IS NULL OR kind IN ('OPENING', 'CREDIT', 'DEBIT')", name=op.f("ck_transfers_kind")
        ),
        sa.CheckConstraint("status IN ('PENDING', 'POSTED', 'VOIDED')", name=op.f("ck_transfers_status")),
        sa.CheckConstraint(
            "amount_minor IS NULL OR amount_minor > 0", name=op.f("ck_transfers_amount_positive")
        ),
        sa.CheckConstraint(
            "status = 'VOIDED' OR (debit_account_id IS NOT NULL AND credit_account_id IS NOT NULL"
            " AND amount_minor IS NOT NULL AND currency IS NOT NULL AND kind IS NOT NULL)",
            name=op.f("ck_transfers_live_transfer_complete"),
        ),
    )
    op.create_index("ix_transfers_debit_account_id", "transfers", ["debit_account_id", "status"])
    op.create_index("ix_transfers_credit_account_id", "transfers", ["credit_account_id", "status"])

    scheme_accounts = sa.table(
        "accounts",
        sa.column("account_id", sa.String),
        sa.column("participant_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("holder_name", sa.String),
        sa.column("currency", sa.String),
        sa.column("balance_minor", sa.BigInteger),
        sa.column("held_minor", sa.BigInteger),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        scheme_accounts,
        [
            {
                "account_id": LINK_ACCOUNT_ID,
                "participant_id": None,
                "kind": "LINK",
                "holder_name": "FPS link settlement (CNY)",
                "currency": "CNY",
                "balance_minor": 0,
                "held_minor": 0,
                "created_at": now,
            },
            {
                "account_id": FUNDING_ACCOUNT_ID,
                "participant_id": None,
                "kind": "FUNDING",
                "holder_name": "IBPS sandbox funding (CNY)",
                "currency": "CNY",
                "balance_minor": 0,
                "held_minor": 0,
                "created_at": now,
            },
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_transfers_credit_account_id", table_name="transfers")
    op.drop_index("ix_transfers_debit_account_id", table_name="transfers")
    op.drop_table("transfers")
    op.drop_index("ix_proxies_account_id", table_name="proxies")
    op.drop_table("proxies")
    op.drop_table("accounts")
    op.drop_table("participants")
