"""Transfers: phase two updates the row in place

Revision ID: 0003_fillfactor
Revises: 0002_statement_index
Create Date: 2026-11-27

A prepared transfer is updated once, by its commit or abort, soon after it was written. Its status
was part of the two account indexes, and pages were full, so that update moved the row to another
page (a lock record, a new heap tuple) and added an entry to each of the table's six indexes. The
account indexes now leave status out (the queries that use them select by account, and almost every
transfer is posted, so status narrowed them little), and half of each new page is left free: the
update stays on its page and adds no index entry. The table takes up to twice the space; pages
written before this revision are unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_fillfactor"
down_revision: str | None = "0002_statement_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ACCOUNT_INDEXES = ("debit_account_id", "credit_account_id")


def upgrade() -> None:
    for column in ACCOUNT_INDEXES:
        op.drop_index(f"ix_transfers_{column}", table_name="transfers")
        op.create_index(f"ix_transfers_{column}", "transfers", [column], unique=False)
    op.execute("ALTER TABLE transfers SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE transfers RESET (fillfactor)")
    for column in ACCOUNT_INDEXES:
        op.drop_index(f"ix_transfers_{column}", table_name="transfers")
        op.create_index(f"ix_transfers_{column}", "transfers", [column, "status"], unique=False)
