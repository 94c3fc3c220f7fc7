from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Integer, String, Table, Text

from fpslink.db import SeqId, UtcDateTime, metadata

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("participant_id", String(40), nullable=False),
    Column("creditor_participant_id", String(40), nullable=True, index=True),
    Column("direction", String(10), nullable=False),
    Column("state", String(10), nullable=False),
    Column("debtor_account_id", String(40), nullable=False, index=True),
    Column("creditor_account_id", String(40), nullable=True),
    Column("creditor_proxy", String(40), nullable=True),
    Column("creditor_masked_name", String(140), nullable=True),
    Column("source_minor", BigInteger(), nullable=True),
    Column("source_currency", String(3), nullable=False),
    Column("target_minor", BigInteger(), nullable=True),
    Column("target_currency", String(3), nullable=True),
    Column("amount_type", String(8), nullable=False),
    Column("mid_rate", String(24), nullable=True),
    Column("rate", String(24), nullable=True),
    Column("spread_bps", String(16), nullable=True),
    Column("quote_id", String(36), nullable=True),
    Column("purpose", String(35), nullable=False),
    Column("remittance_info", String(140), nullable=True),
    Column("end_to_end_id", String(35), nullable=True),
    Column("reason_code", String(40), nullable=True),
    Column("reason", String(300), nullable=True),
    Column("business_date", String(10), nullable=False),
    Column("limit_minor", BigInteger(), nullable=False),
    Column("limit_currency", String(3), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("settled_at", UtcDateTime(), nullable=True),
    Index("ix_payments_participant_created", "participant_id", "created_at"),
    Index("ix_payments_state_updated", "state", "updated_at"),
    Index("ix_payments_created", "created_at"),
    Index("ix_payments_creditor_account", "creditor_account_id"),
    CheckConstraint("state IN ('ACCEPTED', 'COMMITTING', 'ABORTING', 'SETTLED', 'REJECTED')", name="state"),
)
"""One row per payment: its binding (accounts, FX record, limits) and its settlement state."""

payment_events = Table(
    "payment_events",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("payment_id", String(36), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("event", String(40), nullable=False),
    Column("detail", String(500), nullable=True),
    Column("more", Text(), nullable=True),
)
"""The payment's timeline, appended in the same transaction as each step it records.

A step that records several events at one instant writes one row: its first event in `event` and
`detail`, the rest in `more` as a JSON list of [event, detail] pairs, in order. A payment's rows
are a third as many, and each costs an index entry on two indexes.
"""
