from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Table, text

from fpslink.db import SeqId, UtcDateTime, metadata

CURRENCIES = "currency IN ('HKD', 'CNY')"
"""The currencies of `fpslink.money.Currency`: an FPS account holds HKD or CNY."""

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("balance_minor", BigInteger(), nullable=False, server_default=text("0")),
    Column("held_minor", BigInteger(), nullable=False, server_default=text("0")),
    CheckConstraint("kind IN ('CUSTOMER', 'LINK', 'FUNDING')", name="kind"),
    CheckConstraint(CURRENCIES, name="currency"),
    CheckConstraint("held_minor >= 0", name="held_not_negative"),
    CheckConstraint("kind <> 'CUSTOMER' OR balance_minor >= 0", name="balance_not_negative"),
    CheckConstraint("kind <> 'CUSTOMER' OR held_minor <= balance_minor", name="held_within_balance"),
    CheckConstraint(
        "kind = 'CUSTOMER' OR (balance_minor = 0 AND held_minor = 0)", name="system_balance_derived"
    ),
)
"""FPS ledger accounts. Only CUSTOMER rows keep a cached balance and hold; LINK and FUNDING balances
are derived from posted transfers, so no row is updated by every payment. Their rows stay at zero
(`system_balance_derived`): the funding account's derived balance is negative by design, and the
link account's goes either way."""

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("payment_id", String(36), ForeignKey("payments.payment_id"), nullable=True, unique=True),
    Column("kind", String(8), nullable=False),
    Column("debit_account_id", String(40), ForeignKey("ledger_accounts.account_id"), nullable=False),
    Column("credit_account_id", String(40), ForeignKey("ledger_accounts.account_id"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger(), nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime(), nullable=True),
    CheckConstraint("kind IN ('OPENING', 'DEBIT', 'CREDIT', 'CARRIED')", name="kind"),
    CheckConstraint("status IN ('PENDING', 'POSTED', 'VOIDED')", name="status"),
    CheckConstraint(CURRENCIES, name="currency"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("debit_account_id <> credit_account_id", name="distinct_accounts"),
    CheckConstraint("(status = 'PENDING') = (resolved_at IS NULL)", name="resolved_iff_final"),
    Index("ix_ledger_transfers_debit", "debit_account_id"),
    Index("ix_ledger_transfers_credit", "credit_account_id"),
    Index("ix_ledger_transfers_created", "created_at"),
)
"""FPS transfers: OPENING (funding -> customer, posted at once), DEBIT (payer -> link, holds funds)
and CREDIT (link -> payee), each PENDING until posted or voided by the settlement decision, and
CARRIED (posted, between an account and its funding account): what purged payments' postings
brought to the account (`fpslink.retention`, migration 0015). Both accounts and the payment (null
for OPENING and CARRIED) must exist: foreign keys, migration 0008."""
