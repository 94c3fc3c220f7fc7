"""The words the whole gateway shares: systems, directions, limit periods, payment states and the
statuses clients see, and the kinds and statuses of the FPS ledger.

Plain enums that import nothing of the gateway, so that a schema, a repository or a pure policy
can name them without importing the runtime (`context`) or another feature's internals, and no
import cycle can pass through them. The rules over these words live with their features:
`settlement.states` (the state machine), `limits.policy`, `ledger.repository`.
"""

from __future__ import annotations

from enum import StrEnum


class System(StrEnum):
    """The payment system a bank and its accounts belong to."""

    FPS = "FPS"
    IBPS = "IBPS"


class Direction(StrEnum):
    """Northbound: a Hong Kong payer pays a mainland payee; southbound the other way."""

    NORTHBOUND = "NORTHBOUND"
    SOUTHBOUND = "SOUTHBOUND"


class Period(StrEnum):
    DAY = "DAY"
    YEAR = "YEAR"


class State(StrEnum):
    """A payment's settlement state (docs/architecture.md#states)."""

    ACCEPTED = "ACCEPTED"
    COMMITTING = "COMMITTING"
    ABORTING = "ABORTING"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"


class Status(StrEnum):
    """What clients see."""

    PENDING = "PENDING"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"


class AccountKind(StrEnum):
    CUSTOMER = "CUSTOMER"
    LINK = "LINK"
    FUNDING = "FUNDING"


class TransferKind(StrEnum):
    OPENING = "OPENING"
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


class TransferStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"
