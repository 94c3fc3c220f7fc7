from sqlalchemy import BigInteger, CheckConstraint, Column, SmallInteger, Table

from fpslink.db import UtcDateTime, metadata

sandbox_clock = Table(
    "sandbox_clock",
    metadata,
    Column("id", SmallInteger(), primary_key=True, autoincrement=False),
    Column("offset_us", BigInteger(), nullable=False),
    Column("moved_at", UtcDateTime(), nullable=True),
    CheckConstraint("id = 1", name="one_row"),
    CheckConstraint("offset_us >= 0", name="forward_only"),
)
"""How far the sandbox's time is ahead of the wall clock, in microseconds: one row, written by the
test clock (`fpslink.clock.service`) and read by every worker at start-up and on its NOTIFY.
`moved_at` is the wall-clock time of the last move (null: never moved)."""
