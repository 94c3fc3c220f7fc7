from sqlalchemy import BigInteger, CheckConstraint, Column, SmallInteger, String, Table

from fpslink.db import UtcDateTime, metadata

retention_horizon = Table(
    "retention_horizon",
    metadata,
    Column("id", SmallInteger(), primary_key=True, autoincrement=False),
    Column("kept_from", String(10), nullable=True),
    Column("moved_at", UtcDateTime(), nullable=True),
    CheckConstraint("id = 1", name="one_row"),
)
"""One row: the first UTC+8 business date whose payments are all kept (null: nothing purged yet).
Written before a pass deletes anything and never moved back; reconciliation refuses earlier dates."""

limit_usage_carried = Table(
    "limit_usage_carried",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("direction", String(10), primary_key=True),
    Column("period", String(4), primary_key=True),
    Column("period_key", String(10), primary_key=True),
    Column("carried_minor", BigInteger(), nullable=False),
)
"""Per limit usage row, what purged payments had reserved on it: I5 checks each usage row against the
payments kept plus this. Deleted with its usage row once the period is over and nothing else
reserves it."""
