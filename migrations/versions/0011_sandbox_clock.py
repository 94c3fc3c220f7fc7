"""The test clock: the sandbox's offset from the wall clock, one row

Revision ID: 0011_sandbox_clock
Revises: 0010_participant_bic
Create Date: 2026-12-08

`sandbox_clock` holds how far the sandbox's time is ahead of the wall clock (microseconds, never
negative: time only moves forward), so that every worker, and a restarted one, runs at the same
time. The row is inserted here at zero, so that a read always finds it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_sandbox_clock"
down_revision: str | Sequence[str] | None = "0010_participant_bic"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_clock",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("offset_us", sa.BigInteger(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_sandbox_clock_one_row")),
        sa.CheckConstraint("offset_us >= 0", name=op.f("ck_sandbox_clock_forward_only")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_clock")),
    )
    op.execute("INSERT INTO sandbox_clock (id, offset_us) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("sandbox_clock")
