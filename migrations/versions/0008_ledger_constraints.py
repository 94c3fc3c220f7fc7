"""The FPS ledger guards itself: value sets, held within balance, foreign keys

Revision ID: 0008_ledger_constraints
Revises: 0007_fillfactor
Create Date: 2026-12-07

Until now only the invariant check (`ledger/check.py`) noticed a bad ledger row, after the fact;
mock_ibps's ledger refused one from the start. The FPS ledger now does too:

- `ledger_accounts`: kind and currency in their value sets; held never negative; a customer
  account's balance never negative and its hold within it (`held_within_balance`). Link and funding
  rows keep no balance (theirs is derived from the postings: the funding account's is negative by
  design, the link account's goes either way), so their columns stay 0 (`system_balance_derived`).
- `ledger_transfers`: kind, status and currency in their value sets, a positive amount (an opening
  balance of 0 writes no transfer), two different accounts, `resolved_at` set exactly when the
  transfer is no longer PENDING, and foreign keys to both accounts and to the payment (null only
  for OPENING). The link and funding rows exist from revision 0001 on, and a customer account is
  inserted before its OPENING transfer, in one transaction.
- `payments.state` in the settlement states.

The foreign keys are NOT DEFERRABLE. Acceptance inserts a batch's transfers and then its payments
in one statement (data-modifying CTEs, which do not see each other's rows), but PostgreSQL checks
such a key when the statement ends, when the payments are there: tested in
tests/integration/test_gw_ledger_constraints.py. Inserting a transfer takes a key-share lock on
both accounts, which is why the payment path now locks accounts FOR NO KEY UPDATE.

`fpslink_ledger_moved` lets a statement that runs outside any transaction (the commit decision)
fail as a whole when its balance update missed an account, as a bug must; a transaction checks
the same in Python and rolls back. Neither costs a round trip.

The constraints are added valid, in one pass over each table, with no NOT VALID step: `fpslink
serve` migrates before it serves, so nothing waits on the locks, and a ledger that satisfies the
invariants (I1, and no transfer without a payment) satisfies them all. One that does not stops
the upgrade with the offending constraint named, and the database stays at revision 0007.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_ledger_constraints"
down_revision: str | Sequence[str] | None = "0007_fillfactor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENCIES = "currency IN ('HKD', 'CNY')"

CHECKS: tuple[tuple[str, str, str], ...] = (
    ("ledger_accounts", "ck_ledger_accounts_kind", "kind IN ('CUSTOMER', 'LINK', 'FUNDING')"),
    ("ledger_accounts", "ck_ledger_accounts_currency", CURRENCIES),
    ("ledger_accounts", "ck_ledger_accounts_held_not_negative", "held_minor >= 0"),
    (
        "ledger_accounts",
        "ck_ledger_accounts_balance_not_negative",
        "kind <> 'CUSTOMER' OR balance_minor >= 0",
    ),
    (
        "ledger_accounts",
        "ck_ledger_accounts_held_within_balance",
        "kind <> 'CUSTOMER' OR held_minor <= balance_minor",
    ),
    (
        "ledger_accounts",
        "ck_ledger_accounts_system_balance_derived",
        "kind = 'CUSTOMER' OR (balance_minor = 0 AND held_minor = 0)",
    ),
    ("ledger_transfers", "ck_ledger_transfers_kind", "kind IN ('OPENING', 'DEBIT', 'CREDIT')"),
    ("ledger_transfers", "ck_ledger_transfers_status", "status IN ('PENDING', 'POSTED', 'VOIDED')"),
    ("ledger_transfers", "ck_ledger_transfers_currency", CURRENCIES),
    ("ledger_transfers", "ck_ledger_transfers_amount_positive", "amount_minor > 0"),
    ("ledger_transfers", "ck_ledger_transfers_distinct_accounts", "debit_account_id <> credit_account_id"),
    (
        "ledger_transfers",
        "ck_ledger_transfers_resolved_iff_final",
        "(status = 'PENDING') = (resolved_at IS NULL)",
    ),
    (
        "payments",
        "ck_payments_state",
        "state IN ('ACCEPTED', 'COMMITTING', 'ABORTING', 'SETTLED', 'REJECTED')",
    ),
)

FOREIGN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    (
        "fk_ledger_transfers_debit_account_id_ledger_accounts",
        "debit_account_id",
        "ledger_accounts",
        "account_id",
    ),
    (
        "fk_ledger_transfers_credit_account_id_ledger_accounts",
        "credit_account_id",
        "ledger_accounts",
        "account_id",
    ),
    ("fk_ledger_transfers_payment_id_payments", "payment_id", "payments", "payment_id"),
)

MOVED_FUNCTION = """
CREATE FUNCTION fpslink_ledger_moved(changed bigint, named bigint, step text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF changed IS DISTINCT FROM named THEN
        RAISE EXCEPTION 'FPS ledger: % changed % of the % accounts it names', step, changed, named;
    END IF;
    RETURN true;
END
$$
"""


def upgrade() -> None:
    for table, name, condition in CHECKS:
        op.create_check_constraint(op.f(name), table, condition)
    for name, column, referred, referred_column in FOREIGN_KEYS:
        op.create_foreign_key(op.f(name), "ledger_transfers", referred, [column], [referred_column])
    op.execute(MOVED_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION fpslink_ledger_moved(bigint, bigint, text)")
    for name, *_ in reversed(FOREIGN_KEYS):
        op.drop_constraint(op.f(name), "ledger_transfers", type_="foreignkey")
    for table, name, _ in reversed(CHECKS):
        op.drop_constraint(op.f(name), table, type_="check")
