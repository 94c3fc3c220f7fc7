"""Certification runs, their scenarios, and what the sandbox observed of the bank's requests."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from fpslink.db import SeqId, UtcDateTime, metadata

certification_runs = Table(
    "certification_runs",
    metadata,
    Column("certification_id", String(36), primary_key=True),
    Column("participant_id", String(40), ForeignKey("participants.participant_id"), nullable=False),
    Column("suite", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("debtor_account_id", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("creditor_proxy", String(20), nullable=True),
    Column("creditor_account_id", String(40), nullable=True),
    Column("creditor_currency", String(3), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("record", Text(), nullable=True),
    Column("record_at", UtcDateTime(), nullable=True),
    Index("ix_certification_runs_participant_id", "participant_id", "created_at"),
    Index(
        "ux_certification_runs_running",
        "participant_id",
        unique=True,
        postgresql_where=text("status = 'RUNNING'"),
    ),
)
"""A run: the bank, its suite and the accounts it pays between; RUNNING until completed or expired.
Its times are the sandbox's; the bank's record is the JSON of its rows, the last one uploaded."""

certification_scenarios = Table(
    "certification_scenarios",
    metadata,
    Column(
        "certification_id",
        String(36),
        ForeignKey("certification_runs.certification_id"),
        primary_key=True,
    ),
    Column("scenario", String(30), primary_key=True),
    Column("position", Integer(), nullable=False),
    Column("amount_minor", BigInteger(), nullable=True),
    Column("hold_until", UtcDateTime(), nullable=True),
    Column("status", String(10), nullable=False),
    Column("reason", Text(), nullable=True),
    Column("evidence", Text(), nullable=True),
)
"""A scenario of a run: its tag (the amount its payment carries), SLOW_IBPS's hold (real time), and
its verdict once the run has ended (WAITING until then; the live one is judged on each read)."""

certification_observations = Table(
    "certification_observations",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("certification_id", String(36), nullable=False),
    Column("scenario", String(30), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("action", String(20), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("quote_id", String(36), nullable=True),
    Column("status_code", Integer(), nullable=True),
    Column("problem_code", String(40), nullable=True),
    Column("payment_id", String(36), nullable=True),
    Column("payment_status", String(10), nullable=True),
    Column("reason_code", String(40), nullable=True),
    Column("replayed", Boolean(), nullable=False),
    Column("retry_after_s", Integer(), nullable=True),
    Index("ix_certification_observations_run", "certification_id", "seq"),
)
"""Every request of a run's bank that belonged to one of its scenarios, when it arrived (real time)
and what the sandbox did and answered: what the judge decides from."""
