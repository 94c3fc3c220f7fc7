"""API keys a bank can add and revoke, and per-bank rate limits

Revision ID: 0012_api_keys
Revises: 0011_sandbox_clock
Create Date: 2026-12-14

A bank had one key, its hash a column of `participants`. Keys now have a table of their own: each
with its public prefix, creation, last use, expiry and revocation. Every existing key moves there and
keeps working; as only its hash was ever stored, its prefix is `sha256:` and the first twelve hex
digits of that hash. `participants` gains the bank's own rate limit (both columns null: the
settings' default), and `rate_buckets` holds each bank's shared token bucket.

Downgrading keeps each bank's oldest key that is not revoked (or its oldest key) as its one key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_api_keys"
down_revision: str | Sequence[str] | None = "0011_sandbox_clock"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("prefix", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name=op.f("fk_api_keys_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("participant_id", "prefix", name=op.f("uq_api_keys_participant_id")),
    )
    op.execute(
        "INSERT INTO api_keys (key_hash, participant_id, prefix, created_at)"
        " SELECT api_key_hash, participant_id, 'sha256:' || left(api_key_hash, 12), created_at"
        " FROM participants"
    )
    op.drop_constraint(op.f("uq_participants_api_key_hash"), "participants", type_="unique")
    op.drop_column("participants", "api_key_hash")
    op.add_column("participants", sa.Column("rate_limit_quota", sa.Integer(), nullable=True))
    op.add_column("participants", sa.Column("rate_limit_window_s", sa.Integer(), nullable=True))
    op.create_table(
        "rate_buckets",
        sa.Column("participant_id", sa.String(length=40), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_rate_buckets")),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_column("participants", "rate_limit_window_s")
    op.drop_column("participants", "rate_limit_quota")
    op.add_column("participants", sa.Column("api_key_hash", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE participants AS p SET api_key_hash = ("
        " SELECT k.key_hash FROM api_keys AS k WHERE k.participant_id = p.participant_id"
        " ORDER BY k.revoked_at IS NOT NULL, k.created_at, k.key_hash LIMIT 1)"
    )
    op.alter_column("participants", "api_key_hash", nullable=False)
    op.create_unique_constraint(op.f("uq_participants_api_key_hash"), "participants", ["api_key_hash"])
    op.drop_table("api_keys")
