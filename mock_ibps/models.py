"""The IBPS ledger's tables (SQLAlchemy Core): migrations create them, the repository queries them.

Link and funding accounts carry no cached balance that payments update: their balances are derived
from posted transfers, so no single row is written by every payment.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

NAMING_CONVENTION: Final = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LINK_ACCOUNT_ID: Final = "IBPS-LINK-CNY"
FUNDING_ACCOUNT_ID: Final = "IBPS-FUNDING-CNY"

ID_LENGTH: Final = 40
NAME_LENGTH: Final = 140
PROXY_LENGTH: Final = 16
UUID_LENGTH: Final = 36
CODE_LENGTH: Final = 32

metadata = MetaData(naming_convention=NAMING_CONVENTION)

participants = Table(
    "participants",
    metadata,
    Column("participant_id", String(ID_LENGTH), primary_key=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(ID_LENGTH), primary_key=True),
    # Null for the link and funding accounts, which belong to the scheme rather than a bank.
    Column(
        "participant_id",
        String(ID_LENGTH),
        ForeignKey("participants.participant_id"),
        nullable=True,
    ),
    Column("kind", String(16), nullable=False),
    Column("holder_name", String(NAME_LENGTH), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("held_minor", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('CUSTOMER', 'LINK', 'FUNDING')", name="kind"),
    CheckConstraint(
        "kind <> 'CUSTOMER' OR (held_minor >= 0 AND held_minor <= balance_minor)",
        name="held_within_balance",
    ),
    CheckConstraint(
        "kind = 'CUSTOMER' OR (balance_minor = 0 AND held_minor = 0)",
        name="system_balance_derived",
    ),
)

proxies = Table(
    "proxies",
    metadata,
    Column("proxy_value", String(PROXY_LENGTH), primary_key=True),
    Column("proxy_type", String(8), nullable=False),
    Column("account_id", String(ID_LENGTH), ForeignKey("accounts.account_id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "account_id"),
)

transfers = Table(
    "transfers",
    metadata,
    # An identity: the order transfers were recorded in, the statements' paging key.
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("transfer_id", String(UUID_LENGTH), nullable=False, unique=True),
    # The idempotency key of prepare/commit/abort; null only for opening balances.
    Column("payment_id", String(UUID_LENGTH), nullable=True, unique=True),
    # Null only for an abort tombstone, which never learnt what the payment was. CARRIED: what purged
    # transfers brought to `account_id`, against the funding account (`mock_ibps.retention`).
    Column("kind", String(8), nullable=True),
    # The customer account as requested, kept even when it is unknown so replays compare alike.
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("debit_account_id", String(ID_LENGTH), ForeignKey("accounts.account_id"), nullable=True),
    Column("credit_account_id", String(ID_LENGTH), ForeignKey("accounts.account_id"), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("amount_minor", BigInteger, nullable=True),
    Column("status", String(8), nullable=False),
    Column("reason_code", String(CODE_LENGTH), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("kind IS NULL OR kind IN ('OPENING', 'CREDIT', 'DEBIT', 'CARRIED')", name="kind"),
    CheckConstraint("status IN ('PENDING', 'POSTED', 'VOIDED')", name="status"),
    CheckConstraint("amount_minor IS NULL OR amount_minor > 0", name="amount_positive"),
    CheckConstraint(
        "status = 'VOIDED' OR (debit_account_id IS NOT NULL AND credit_account_id IS NOT NULL"
        " AND amount_minor IS NOT NULL AND currency IS NOT NULL AND kind IS NOT NULL)",
        name="live_transfer_complete",
    ),
    # not on status: a transfer's commit or abort then changes no indexed column and, with room on
    # its page (migration 0003), updates the row in place with no new index entries
    Index(None, "debit_account_id"),
    Index(None, "credit_account_id"),
    Index("ix_transfers_created_at", "created_at"),
)

transfer_references = Table(
    "transfer_references",
    metadata,
    Column("payment_id", String(UUID_LENGTH), primary_key=True),
    Column("msg_id", String(35), nullable=True),
    Column("instr_id", String(35), nullable=True),
    Column("end_to_end_id", String(35), nullable=True),
    Column("tx_id", String(35), nullable=True),
    Column("uetr", String(UUID_LENGTH), nullable=True),
    Column("purpose_code", String(4), nullable=True),
    Column("purpose_proprietary", String(35), nullable=True),
    Column("unstructured", Text, nullable=False),
    Column("structured", Text, nullable=False),
    Column("instructed_amount", String(32), nullable=False),
    Column("instructed_currency", String(3), nullable=False),
    Column("source_currency", String(3), nullable=True),
    Column("target_currency", String(3), nullable=True),
    Column("rate", String(24), nullable=True),
)
"""What the debtor's bank sent with a payment that came as an ISO 20022 pacs.008
(`ibps_wire.schemas.TransferReferences`), kept with its transfer (by payment id) by the prepare that
recorded it, for the statement (camt.053) to give back. The remittance lists are JSON arrays."""

sandbox_clock = Table(
    "sandbox_clock",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("offset_us", BigInteger, nullable=False),
    Column("moved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("id = 1", name="one_row"),
    CheckConstraint("offset_us >= 0", name="not_negative"),
)
"""How far IBPS's time runs ahead of its wall clock (microseconds), as the gateway's test clock set
it: one row, read at start-up and followed by NOTIFY (`mock_ibps.clock`)."""

retention_horizon = Table(
    "retention_horizon",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("kept_from", Date, nullable=True),
    Column("moved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("id = 1", name="one_row"),
)
"""One row: the first UTC+8 business date whose transfers are all kept (null: nothing purged yet).
Moved before a pass deletes anything, never back; statements of earlier dates are refused."""
