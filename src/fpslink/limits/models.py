from sqlalchemy import BigInteger, Column, String, Table

from fpslink.db import metadata

limit_usage = Table(
    "limit_usage",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("direction", String(10), primary_key=True),
    Column("period", String(4), primary_key=True),
    Column("period_key", String(10), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("used_minor", BigInteger(), nullable=False),
    Column("cap_minor", BigInteger(), nullable=True),
)
"""Reserved usage per (debtor account, direction, DAY|YEAR, UTC+8 date or year). `cap_minor` is the
limit in force at the last reservation (null: none), so that I5 holds even when settings change."""
