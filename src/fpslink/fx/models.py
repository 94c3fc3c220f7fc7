from sqlalchemy import BigInteger, Column, Index, String, Table

from fpslink.db import UtcDateTime, metadata

quotes = Table(
    "quotes",
    metadata,
    Column("quote_id", String(36), primary_key=True),
    Column("participant_id", String(40), nullable=False),
    Column("source_currency", String(3), nullable=False),
    Column("target_currency", String(3), nullable=False),
    Column("amount_type", String(8), nullable=False),
    Column("source_minor", BigInteger(), nullable=False),
    Column("target_minor", BigInteger(), nullable=False),
    Column("mid_rate", String(24), nullable=False),
    Column("rate", String(24), nullable=False),
    Column("spread_bps", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("payment_id", String(36), nullable=True),
    Index("ix_quotes_created", "created_at"),
)
"""Firm quotes. Rates are exact decimal strings; `payment_id` is set once, when a payment uses it.
Retention deletes them by age (`ix_quotes_created`)."""
