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
    CARRIED = "CARRIED"
    """The balance purged payments brought to an account, against its funding account (no payment)."""


class TransferStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


class Purpose(StrEnum):
    """Why a payment is made: the link's named purposes, each with the ISO 20022 purpose code
    (ExternalPurpose1Code) it is carried as in pacs.008 `Purp/Cd` (`iso_code`).

    A closed list: a purpose is reported with every cross-border remittance, so a typo ("GIFTS")
    must be refused at once rather than stored. docs/concepts.md#purposes lists them.
    """

    FAMILY_SUPPORT = "FAMILY_SUPPORT"
    SALARY = "SALARY"
    EDUCATION = "EDUCATION"
    MEDICAL = "MEDICAL"
    GIFT = "GIFT"
    GOODS_TRADE = "GOODS_TRADE"
    INVOICE = "INVOICE"
    RENT = "RENT"
    INSURANCE = "INSURANCE"
    CHARITY = "CHARITY"
    SAVINGS = "SAVINGS"
    OTHER = "OTHER"

    @property
    def iso_code(self) -> str:
        return ISO_PURPOSE[self]

    @classmethod
    def read(cls, text: str) -> Purpose:
        """A purpose by its name or its ISO 20022 code ("FAMILY_SUPPORT" or "FAMI"); ValueError
        naming every accepted value otherwise."""
        value = text.strip().upper()
        if value in cls.__members__:
            return cls[value]
        for purpose, code in ISO_PURPOSE.items():
            if code == value:
                return purpose
        raise ValueError(f"{text!r} is not a purpose of the link: use one of {', '.join(cls)}")


ISO_PURPOSE: dict[Purpose, str] = {
    Purpose.FAMILY_SUPPORT: "FAMI",
    Purpose.SALARY: "SALA",
    Purpose.EDUCATION: "EDUC",
    Purpose.MEDICAL: "MDCS",
    Purpose.GIFT: "GIFT",
    Purpose.GOODS_TRADE: "GDDS",
    Purpose.INVOICE: "IVPT",
    Purpose.RENT: "RENT",
    Purpose.INSURANCE: "INSU",
    Purpose.CHARITY: "CHAR",
    Purpose.SAVINGS: "SAVG",
    Purpose.OTHER: "OTHR",
}
