"""The closed sets of values on the IBPS wire; mock_ibps's domain uses the same enums."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """What one item of a batch asks for."""

    PREPARE = "prepare"
    COMMIT = "commit"
    ABORT = "abort"


class TransferKind(StrEnum):
    OPENING = "OPENING"  # an account's opening balance; no payment
    CREDIT = "CREDIT"  # northbound: LINK -> mainland payee
    DEBIT = "DEBIT"  # southbound: mainland payer -> LINK
    CARRIED = "CARRIED"  # what purged transfers brought to an account, against FUNDING; no payment


class TransferStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


class Outcome(StrEnum):
    """A prepare's answer: a business refusal is an outcome (200), not an error."""

    PREPARED = "PREPARED"
    REFUSED = "REFUSED"


class Reason(StrEnum):
    """Why a prepare was refused: ISO 20022 ExternalStatusReason codes where one fits, else our own."""

    AC01 = "AC01"
    AM03 = "AM03"
    AM04 = "AM04"
    RR04 = "RR04"
    ALREADY_ABORTED = "ALREADY_ABORTED"


class FaultCall(StrEnum):
    """The IBPS calls that the sandbox's fault injection can make misbehave."""

    PREPARE = "prepare"
    COMMIT = "commit"
    ABORT = "abort"
    LOOKUP = "lookup"
    STATEMENT = "statement"


class FaultKind(StrEnum):
    ERROR = "error"
    TIMEOUT = "timeout"
    LOST_REPLY = "lost_reply"
    DUPLICATE = "duplicate"
    LATENCY = "latency"
