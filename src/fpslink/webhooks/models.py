from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from fpslink.db import UtcDateTime, metadata

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String(36), primary_key=True),
    Column("participant_id", String(40), nullable=False, index=True),
    Column("url", String(500), nullable=False),
    Column("secret", String(80), nullable=False),
    Column("active", Boolean(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
"""A bank's endpoint; the secret signs every delivery and is shown once, when it is registered."""

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(80), primary_key=True),
    Column("webhook_id", String(36), nullable=False),
    Column("participant_id", String(40), nullable=False),
    Column("event", String(40), nullable=False),
    Column("payment_id", String(36), nullable=True),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_status_code", Integer(), nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("certification_id", String(36), nullable=True),
    Column("probe", String(20), nullable=True),
    Column("payload", Text(), nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_participant_created", "participant_id", "created_at"),
)
"""The outbox: one row per (final payment outcome, subscribed webhook), written in the transaction
that makes the payment final. `delivery_id` is `<payment_id>:<webhook_id>`, the event's id.

A certification run adds two kinds of row to its bank's webhooks only: its own events
(`certification_id`, no payment, the run's summary in `payload`), and probes of a payment's event
(`probe`: a duplicate, a bad signature or a stale timestamp; `fpslink.webhooks.probes`)."""
