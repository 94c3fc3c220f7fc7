from sqlalchemy import Column, Index, String, Table

from fpslink.db import UtcDateTime, metadata

participants = Table(
    "participants",
    metadata,
    Column("participant_id", String(40), primary_key=True),
    Column("name", String(140), nullable=False),
    Column("system", String(4), nullable=False),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("bic", String(11), nullable=True),
    Index("ux_participants_bic", "bic", unique=True),
)

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
