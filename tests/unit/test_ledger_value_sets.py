"""The value-set CHECK constraints of the FPS ledger and payments list exactly the code's enums."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Table

from fpslink.ledger.models import ledger_accounts, ledger_transfers
from fpslink.money import Currency
from fpslink.payments.models import payments
from fpslink.vocabulary import AccountKind, State, TransferKind, TransferStatus


def listed(table: Table, name: str) -> set[str]:
    """The values of the `<column> IN ('A', 'B')` constraint `name` of `table`."""
    full = f"ck_{table.name}_{name}"
    (check,) = [c for c in table.constraints if isinstance(c, CheckConstraint) and c.name == full]
    found = re.fullmatch(r"\w+ IN \(((?:'\w+'(?:, )?)+)\)", str(check.sqltext))
    assert found, check.sqltext
    return set(re.findall(r"'(\w+)'", found.group(1)))


@pytest.mark.parametrize(
    ("table", "name", "enum"),
    [
        (ledger_accounts, "kind", AccountKind),
        (ledger_accounts, "currency", Currency),
        (ledger_transfers, "kind", TransferKind),
        (ledger_transfers, "status", TransferStatus),
        (ledger_transfers, "currency", Currency),
        (payments, "state", State),
    ],
)
def test_the_value_set_is_the_enum(table: Table, name: str, enum: type[StrEnum]) -> None:
    assert listed(table, name) == {member.value for member in enum}
