from sqlalchemy import Column, Index, Integer, String, Table, Text

from fpslink.db import UtcDateTime, metadata

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("participant_id", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("endpoint", String(80), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("payment_id", String(36), nullable=True),
    Column("response_status", Integer(), nullable=True),
    Column("response_body", Text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=False, index=True),
    Index("ix_idempotency_keys_payment_id", "payment_id"),
)
"""(participant, key) -> one request. Payment keys answer replays from the payment as it is now;
other endpoints replay their stored response."""
