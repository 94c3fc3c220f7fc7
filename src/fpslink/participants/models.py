from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from fpslink.db import UtcDateTime, metadata

participants = Table(
    "participants",
    metadata,
    Column("participant_id", String(40), primary_key=True),
    Column("name", String(140), nullable=False),
    Column("system", String(4), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("bic", String(11), nullable=True),
    Column("rate_limit_quota", Integer(), nullable=True),
    Column("rate_limit_window_s", Integer(), nullable=True),
    Index("ux_participants_bic", "bic", unique=True),
)
"""A bank. Its rate limit is the settings' default unless the operator set both columns."""

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("participant_id", String(40), ForeignKey("participants.participant_id"), nullable=False),
    Column("prefix", String(60), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
    UniqueConstraint("participant_id", "prefix"),
)
"""A bank's API keys: the SHA-256 of each (never the key), and the prefix it is listed and revoked by."""

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("participant_id", String(40), nullable=False, index=True),
    Column("system", String(4), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("holder_name", String(140), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
"""The gateway's directory of customer accounts in both systems: who owns what, for authorisation.
Balances live in the ledgers: FPS accounts in `ledger_accounts`, IBPS accounts in mock_ibps."""
