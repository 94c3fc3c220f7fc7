"""Certification runs, their scenarios and observations; webhook rows for runs and probes

Revision ID: 0014_certification
Revises: 0013_iso20022_transactions
Create Date: 2026-12-21

A bank certifies its client with a run (`certification_runs`, one RUNNING per bank), whose scenarios
(`certification_scenarios`) each tag a payment by its amount, and whose observations
(`certification_observations`) are the bank's requests the sandbox saw and perturbed.

The webhook outbox carries two more kinds of row, to the run's bank only: the run's own events
(`certification_id` and its summary in `payload`, no payment, so `payment_id` may be null), and probes
of a payment's event (`probe`). Adding nullable columns rewrites nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_certification"
down_revision: str | Sequence[str] | None = "0013_iso20022_transactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certification_runs",
        sa.Column("certification_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("suite", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("debtor_account_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("creditor_proxy", sa.String(length=20), nullable=True),
        sa.Column("creditor_account_id", sa.String(length=40), nullable=True),
        sa.Column("creditor_currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("record_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name=op.f("fk_certification_runs_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("certification_id", name=op.f("pk_certification_runs")),
    )
    op.create_index(
        "ix_certification_runs_participant_id", "certification_runs", ["participant_id", "created_at"]
    )
    op.create_index(
        "ux_certification_runs_running",
        "certification_runs",
        ["participant_id"],
        unique=True,
        postgresql_where=sa.text("status = 'RUNNING'"),
    )
    op.create_table(
        "certification_scenarios",
        sa.Column("certification_id", sa.String(length=36), nullable=False),
        sa.Column("scenario", sa.String(length=30), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["certification_id"],
            ["certification_runs.certification_id"],
            name=op.f("fk_certification_scenarios_certification_id_certification_runs"),
        ),
        sa.PrimaryKeyConstraint("certification_id", "scenario", name=op.f("pk_certification_scenarios")),
    )
    op.create_table(
        "certification_observations",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("certification_id", sa.String(length=36), nullable=False),
        sa.Column("scenario", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("quote_id", sa.String(length=36), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("problem_code", sa.String(length=40), nullable=True),
        sa.Column("payment_id", sa.String(length=36), nullable=True),
        sa.Column("payment_status", sa.String(length=10), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("replayed", sa.Boolean(), nullable=False),
        sa.Column("retry_after_s", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_certification_observations")),
    )
    op.create_index(
        "ix_certification_observations_run", "certification_observations", ["certification_id", "seq"]
    )
    op.alter_column("webhook_deliveries", "payment_id", existing_type=sa.String(length=36), nullable=True)
    op.add_column("webhook_deliveries", sa.Column("certification_id", sa.String(length=36), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("probe", sa.String(length=20), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("payload", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM webhook_deliveries WHERE payment_id IS NULL OR probe IS NOT NULL")
    op.drop_column("webhook_deliveries", "payload")
    op.drop_column("webhook_deliveries", "probe")
    op.drop_column("webhook_deliveries", "certification_id")
    op.alter_column("webhook_deliveries", "payment_id", existing_type=sa.String(length=36), nullable=False)
    op.drop_index("ix_certification_observations_run", table_name="certification_observations")
    op.drop_table("certification_observations")
    op.drop_table("certification_scenarios")
    op.drop_index("ux_certification_runs_running", table_name="certification_runs")
    op.drop_index("ix_certification_runs_participant_id", table_name="certification_runs")
    op.drop_table("certification_runs")
