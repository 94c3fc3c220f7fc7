"""A bank's BIC

Revision ID: 0010_participant_bic
Revises: 0009_console_sessions
Create Date: 2026-12-09

ISO 20022 messages name banks by BIC: the business application header's `Fr` must be the calling
bank, and CBPR+ and HVPS+ headers carry a BICFI, not the gateway's participant id. A bank may have
one BIC (8 or 11 characters, as registered), and no two banks the same one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_participant_bic"
down_revision: str | Sequence[str] | None = "0009_console_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("participants", sa.Column("bic", sa.String(11), nullable=True))
    op.create_index("ux_participants_bic", "participants", ["bic"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_participants_bic", table_name="participants")
    op.drop_column("participants", "bic")
