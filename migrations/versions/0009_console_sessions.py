"""Console sessions ended on the server and log-in attempts; no secret in stored responses; a payment
refused before acceptance has no creditor's bank

Revision ID: 0009_console_sessions
Revises: 0008_ledger_constraints
Create Date: 2026-12-07

- `console_sessions_ended`: logging out of the console ends the session for every worker (its
  signed cookie stays valid to the signature check, so the server keeps the nonces it refuses
  until they would have expired).
- `console_login_attempts`: log-in attempts that have not logged in, per client address and per
  key prefix and fixed window, shared by every worker (`fpslink/console/throttle.py`).
- Stored idempotent responses of `POST /v1/participants` and `POST /v1/webhooks` lose the API key
  or signing secret they showed, as the code now stores them: a replay answers without it.
- A payment rejected before acceptance (no ACCEPTED event) loses its creditor's bank, as the code
  now records it, and that bank's webhook deliveries of it go: the bank was never a party.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_console_sessions"
down_revision: str | Sequence[str] | None = "0008_ledger_constraints"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_KEY_SHOWN_ONCE = (
    "api_key was shown once, in the answer that created this bank; the gateway keeps only its hash, "
    "so this replay cannot repeat it. If it was lost, issue the bank a new key."
)
SECRET_SHOWN_ONCE = (
    "secret was shown once, in the answer that registered this webhook, and this replay does not "
    "repeat it. If it was lost, delete the webhook and register the URL again (with a new "
    "Idempotency-Key) for a new secret."
)
REDACT = sa.text(
    "UPDATE idempotency_keys"
    " SET response_body = (response_body::jsonb || jsonb_build_object(:field, NULL, 'notice', :notice))::text"
    " WHERE endpoint = :endpoint AND response_body IS NOT NULL"
    " AND jsonb_typeof(response_body::jsonb) = 'object' AND response_body::jsonb ->> :field IS NOT NULL"
)
NO_CREDITOR_PARTY = """
WITH hidden AS (
    SELECT p.payment_id, p.participant_id AS debtor_bank, p.creditor_participant_id AS creditor_bank
    FROM payments AS p
    WHERE p.state = 'REJECTED' AND p.creditor_participant_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM payment_events AS e WHERE e.payment_id = p.payment_id AND e.event = 'ACCEPTED'
      )
), untold AS (
    DELETE FROM webhook_deliveries AS d USING hidden AS h
    WHERE d.payment_id = h.payment_id AND d.participant_id = h.creditor_bank
      AND h.creditor_bank <> h.debtor_bank
)
UPDATE payments AS p SET creditor_participant_id = NULL FROM hidden AS h WHERE p.payment_id = h.payment_id
"""


def upgrade() -> None:
    op.create_table(
        "console_sessions_ended",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_console_sessions_ended")),
    )
    op.create_index(
        op.f("ix_console_sessions_ended_expires_at"), "console_sessions_ended", ["expires_at"], unique=False
    )
    op.create_table(
        "console_login_attempts",
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_console_login_attempts")),
    )
    op.create_index(
        op.f("ix_console_login_attempts_window_start"),
        "console_login_attempts",
        ["window_start"],
        unique=False,
    )
    for endpoint, field, notice in (
        ("POST /v1/participants", "api_key", API_KEY_SHOWN_ONCE),
        ("POST /v1/webhooks", "secret", SECRET_SHOWN_ONCE),
    ):
        op.execute(REDACT.bindparams(endpoint=endpoint, field=field, notice=notice))
    op.execute(NO_CREDITOR_PARTY)


def downgrade() -> None:
    """The tables go; the secrets and the creditors' banks cleared by the upgrade do not come back."""
    op.drop_index(op.f("ix_console_login_attempts_window_start"), table_name="console_login_attempts")
    op.drop_table("console_login_attempts")
    op.drop_index(op.f("ix_console_sessions_ended_expires_at"), table_name="console_sessions_ended")
    op.drop_table("console_sessions_ended")
