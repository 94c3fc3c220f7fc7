"""An FPS ledger transfer as the gateway's code handles it: a frozen, typed value.

Read from `ledger_transfers` by `Transfer.from_row` and written from `Transfer.values()`, so the
stored text (kind, status, currency) is decoded and encoded in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fpslink.money import Currency
from fpslink.vocabulary import TransferKind, TransferStatus


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer between two FPS accounts, in integer minor units of `currency`.

    `payment_id` is None for an OPENING; `resolved_at` is None while the transfer is PENDING. The
    table's `seq` is left out: it only orders the rows, and nothing reads a transfer by it.
    """

    payment_id: str | None
    kind: TransferKind
    debit_account_id: str
    credit_account_id: str
    currency: Currency
    amount_minor: int
    status: TransferStatus
    created_at: datetime
    resolved_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Transfer:
        return cls(
            payment_id=row["payment_id"],
            kind=TransferKind(row["kind"]),
            debit_account_id=row["debit_account_id"],
            credit_account_id=row["credit_account_id"],
            currency=Currency(row["currency"]),
            amount_minor=row["amount_minor"],
            status=TransferStatus(row["status"]),
            created_at=row["created_at"],
            resolved_at=row["resolved_at"],
        )

    def values(self) -> dict[str, Any]:
        """The columns as the table stores them (all but `seq`): what an INSERT takes."""
        return {
            "payment_id": self.payment_id,
            "kind": self.kind.value,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "currency": self.currency.value,
            "amount_minor": self.amount_minor,
            "status": self.status.value,
            "created_at": self.created_at,
            "resolved_at": self.resolved_at,
        }
