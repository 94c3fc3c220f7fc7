"""Ledger transfers: posting or voiding updates the row in place (PostgreSQL)

Revision ID: 0007_fillfactor
Revises: 0006_grouped_events
Create Date: 2026-11-27

A ledger transfer is updated once, PENDING to POSTED or VOIDED, soon after it was written. On full
pages that update moved the row to another page: a lock record, a new heap tuple and an entry in
each of the table's five indexes. With half of each new page left free it stays on its page and, as
it changes no indexed column, adds no index entry at all (a HOT update). The table takes up to
twice the space; pages written before this revision are unchanged.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_fillfactor"
down_revision: str | Sequence[str] | None = "0006_grouped_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ledger_transfers SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE ledger_transfers RESET (fillfactor)")
