"""What a bank sent with a pacs.008 transaction beyond the payment it asks for, kept with that payment.

The payment itself keeps what a JSON payment has (its EndToEndId, a purpose of the link's list, the
unstructured remittance joined into 140 characters); these are the rest, as sent, so that nothing
the bank wrote is lost: its references (MsgId, InstrId, EndToEndId, TxId, UETR), the purpose as it
wrote it (Purp/Cd or Purp/Prtry), every RmtInf/Ustrd line, every RmtInf/Strd (as XML in its
message's namespace), and InstdAmt. They are written in the transaction that records the payment
(`iso20022_details`, by payment id), so that a payment sent as a pacs.008 never exists without
them; they are shown on the payment (`GET /v1/payments/{id}` and the console), sent in its webhooks,
given to IBPS with its prepare (for the camt.053 statement) and listed in the reconciliation report.
Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

MAX_STRUCTURED: Final = 10
"""The most RmtInf/Strd one transaction may carry (CBPR+ allows one)."""
MAX_STRUCTURED_CHARS: Final = 10_000
"""The longest Strd kept (as XML): real ones are a few hundred characters."""


@dataclass(frozen=True, slots=True)
class Details:
    """One pacs.008 transaction's references, purpose, remittance and instructed amount, as sent."""

    message_name: str
    msg_id: str
    instr_id: str | None
    end_to_end_id: str | None
    tx_id: str | None
    uetr: str | None
    purpose_code: str | None
    """Purp/Cd, an ISO 20022 ExternalPurpose1Code (FAMI)."""
    purpose_proprietary: str | None
    """Purp/Prtry (FAMILY_SUPPORT)."""
    unstructured: tuple[str, ...]
    """RmtInf/Ustrd, each line as sent."""
    structured: tuple[str, ...]
    """RmtInf/Strd, each as an XML element `<Strd xmlns="...pacs.008.001.NN">...</Strd>`."""
    instructed_amount: Decimal | None
    """InstdAmt, exactly as sent (it may carry more decimals than its currency)."""
    instructed_currency: str | None

    def public(self) -> dict[str, Any]:
        """The JSON the payment's resource and its webhook events carry, under `iso20022`."""
        return {
            "message_name": self.message_name,
            "msg_id": self.msg_id,
            "instr_id": self.instr_id,
            "end_to_end_id": self.end_to_end_id,
            "tx_id": self.tx_id,
            "uetr": self.uetr,
            "purpose": {"code": self.purpose_code, "proprietary": self.purpose_proprietary},
            "remittance": {"unstructured": list(self.unstructured), "structured": list(self.structured)},
            "instructed_amount": None if self.instructed_amount is None else str(self.instructed_amount),
            "instructed_currency": self.instructed_currency,
        }

    def row(self, payment_id: str) -> dict[str, Any]:
        """Its row of `iso20022_details` (the lists as JSON text)."""
        return {
            "payment_id": payment_id,
            "message_name": self.message_name,
            "msg_id": self.msg_id,
            "instr_id": self.instr_id,
            "end_to_end_id": self.end_to_end_id,
            "tx_id": self.tx_id,
            "uetr": self.uetr,
            "purpose_code": self.purpose_code,
            "purpose_proprietary": self.purpose_proprietary,
            "remittance_unstructured": json.dumps(list(self.unstructured), ensure_ascii=False),
            "remittance_structured": json.dumps(list(self.structured), ensure_ascii=False),
            "instructed_amount": None if self.instructed_amount is None else str(self.instructed_amount),
            "instructed_currency": self.instructed_currency,
        }

    @classmethod
    def from_row(cls, row: Any) -> Details:
        amount = row.instructed_amount
        return cls(
            message_name=row.message_name,
            msg_id=row.msg_id,
            instr_id=row.instr_id,
            end_to_end_id=row.end_to_end_id,
            tx_id=row.tx_id,
            uetr=row.uetr,
            purpose_code=row.purpose_code,
            purpose_proprietary=row.purpose_proprietary,
            unstructured=tuple(json.loads(row.remittance_unstructured)),
            structured=tuple(json.loads(row.remittance_structured)),
            instructed_amount=None if amount is None else Decimal(amount),
            instructed_currency=row.instructed_currency,
        )
