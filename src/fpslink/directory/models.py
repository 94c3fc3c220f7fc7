from sqlalchemy import Column, String, Table

from fpslink.db import UtcDateTime, metadata

proxies = Table(
    "proxies",
    metadata,
    Column("proxy_type", String(16), primary_key=True),
    Column("proxy_value", String(40), primary_key=True),
    Column("account_id", String(40), nullable=False, index=True),
    Column("participant_id", String(40), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
"""FPS (+852) proxies. Mainland (+86) proxies live in mock_ibps and are resolved through it."""
