from sqlalchemy import BigInteger, Column, Index, String, Table, text

from fpslink.db import SeqId, UtcDateTime, metadata

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("balance_minor", BigInteger(), nullable=False, server_default=text("0")),
    Column("held_minor", BigInteger(), nullable=False, server_default=text("0")),
)
"""FPS ledger accounts. Only CUSTOMER rows keep a cached balance and hold; LINK and FUNDING balances
are derived from posted transfers, so no row is updated by every payment."""

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("payment_id", String(36), nullable=True, unique=True),
    Column("kind", String(8), nullable=False),
    Column("debit_account_id", String(40), nullable=False),
    Column("credit_account_id", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger(), nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    Index("ix_ledger_transfers_debit", "debit_account_id"),
    Index("ix_ledger_transfers_credit", "credit_account_id"),
    Index("ix_ledger_transfers_created", "created_at"),
)
"""FPS transfers: OPENING (funding -> customer, posted at once), DEBIT (payer -> link, holds funds)
and CREDIT (link -> payee), each PENDING until posted or voided by the settlement decision."""
