"""The sandbox clock: IBPS's offset from the wall clock, set by the gateway's test clock

Revision ID: 0004_sandbox_clock
Revises: 0003_fillfactor
Create Date: 2026-12-08

One row, inserted here at zero so that a read always finds it. The gateway decides the offset (time
only moves forward there); mock_ibps keeps it so that a restart runs at the same time, and dates
its transfers and statements by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_sandbox_clock"
down_revision: str | None = "0003_fillfactor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sandbox_clock",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("offset_us", sa.BigInteger(), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_sandbox_clock_one_row")),
        sa.CheckConstraint("offset_us >= 0", name=op.f("ck_sandbox_clock_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_clock")),
    )
    op.execute("INSERT INTO sandbox_clock (id, offset_us) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("sandbox_clock")
