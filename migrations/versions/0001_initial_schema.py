"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27

The FPS ledger's link and funding accounts are created here: they exist in every database.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("system", sa.String(length=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("holder_name", sa.String(length=140), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_participant_id"), ["participant_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=80), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "ledger_accounts",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("held_minor", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_ledger_accounts")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column(
            "seq",
            sa.BigInteger(),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("debit_account_id", sa.String(length=40), nullable=False),
        sa.Column("credit_account_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_ledger_transfers_payment_id")),
    )
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_transfers_credit", ["credit_account_id"], unique=False)
        batch_op.create_index("ix_ledger_transfers_debit", ["debit_account_id"], unique=False)

    op.create_table(
        "limit_usage",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("period_key", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("used_minor", sa.BigInteger(), nullable=False),
        sa.Column("cap_minor", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "account_id", "direction", "period", "period_key", name=op.f("pk_limit_usage")
        ),
    )
    op.create_table(
        "participants",
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=140), nullable=False),
        sa.Column("system", sa.String(length=4), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_participants")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_participants_api_key_hash")),
    )
    op.create_table(
        "payment_events",
        sa.Column(
            "seq",
            sa.BigInteger(),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_payment_events")),
    )
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_events_payment_id"), ["payment_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("creditor_participant_id", sa.String(length=40), nullable=True),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("debtor_account_id", sa.String(length=40), nullable=False),
        sa.Column("creditor_account_id", sa.String(length=40), nullable=True),
        sa.Column("creditor_proxy", sa.String(length=40), nullable=True),
        sa.Column("creditor_masked_name", sa.String(length=140), nullable=True),
        sa.Column("source_minor", sa.BigInteger(), nullable=True),
        sa.Column("source_currency", sa.String(length=3), nullable=False),
        sa.Column("target_minor", sa.BigInteger(), nullable=True),
        sa.Column("target_currency", sa.String(length=3), nullable=True),
        sa.Column("amount_type", sa.String(length=8), nullable=False),
        sa.Column("mid_rate", sa.String(length=24), nullable=True),
        sa.Column("rate", sa.String(length=24), nullable=True),
        sa.Column("spread_bps", sa.String(length=16), nullable=True),
        sa.Column("quote_id", sa.String(length=36), nullable=True),
        sa.Column("purpose", sa.String(length=35), nullable=False),
        sa.Column("remittance_info", sa.String(length=140), nullable=True),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("business_date", sa.String(length=10), nullable=False),
        sa.Column("limit_minor", sa.BigInteger(), nullable=False),
        sa.Column("limit_currency", sa.String(length=3), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_created", ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_payments_creditor_participant_id"),
            ["creditor_participant_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_payments_debtor_account_id"), ["debtor_account_id"], unique=False
        )
        batch_op.create_index(
            "ix_payments_participant_created", ["participant_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_payments_state_updated", ["state", "updated_at"], unique=False)

    op.create_table(
        "proxies",
        sa.Column("proxy_type", sa.String(length=16), nullable=False),
        sa.Column("proxy_value", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("proxy_type", "proxy_value", name=op.f("pk_proxies")),
    )
    with op.batch_alter_table("proxies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proxies_account_id"), ["account_id"], unique=False)

    op.create_table(
        "quotes",
        sa.Column("quote_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("source_currency", sa.String(length=3), nullable=False),
        sa.Column("target_currency", sa.String(length=3), nullable=False),
        sa.Column("amount_type", sa.String(length=8), nullable=False),
        sa.Column("source_minor", sa.BigInteger(), nullable=False),
        sa.Column("target_minor", sa.BigInteger(), nullable=False),
        sa.Column("mid_rate", sa.String(length=24), nullable=False),
        sa.Column("rate", sa.String(length=24), nullable=False),
        sa.Column("spread_bps", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("quote_id", name=op.f("pk_quotes")),
    )

    ledger = sa.table(
        "ledger_accounts",
        sa.column("account_id", sa.String),
        sa.column("currency", sa.String),
        sa.column("kind", sa.String),
        sa.column("balance_minor", sa.BigInteger),
        sa.column("held_minor", sa.BigInteger),
    )
    op.bulk_insert(
        ledger,
        [
            {
                "account_id": f"FPS-{kind}-{cur}",
                "currency": cur,
                "kind": kind,
                "balance_minor": 0,
                "held_minor": 0,
            }
            for kind in ("LINK", "FUNDING")
            for cur in ("HKD", "CNY")
        ],
    )


def downgrade() -> None:
    op.drop_table("quotes")
    with op.batch_alter_table("proxies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proxies_account_id"))

    op.drop_table("proxies")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_state_updated")
        batch_op.drop_index("ix_payments_participant_created")
        batch_op.drop_index(batch_op.f("ix_payments_debtor_account_id"))
        batch_op.drop_index(batch_op.f("ix_payments_creditor_participant_id"))
        batch_op.drop_index("ix_payments_created")

    op.drop_table("payments")
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_events_payment_id"))

    op.drop_table("payment_events")
    op.drop_table("participants")
    op.drop_table("limit_usage")
    with op.batch_alter_table("ledger_transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transfers_debit")
        batch_op.drop_index("ix_ledger_transfers_credit")

    op.drop_table("ledger_transfers")
    op.drop_table("ledger_accounts")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_participant_id"))

    op.drop_table("accounts")
