"""How the users judge an answer: the problem code of an error, which payment states count as
settling, and the sandbox's one amount that mock_ibps refuses on purpose."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

SETTLING = {"SETTLED", "PENDING"}
MAGIC_REFUSED_CNY = Decimal("404.04")
"""An IBPS leg of this CNY amount is refused (RR04) by mock_ibps; ordinary amounts can land on it."""


def problem_code(resp: Any) -> str:
    """The `code` of a problem answer, for failure messages; no-json or no-code when there is none."""
    try:
        body = resp.json()
    except Exception:
        return "no-json"
    return str(body.get("code", "no-code")) if isinstance(body, dict) else "no-code"


def cny_leg(payment: dict[str, Any]) -> Decimal | None:
    """The CNY amount of a payment's IBPS leg (its source or its target), if it has one."""
    for side in ("source", "target"):
        if payment.get(f"{side}_currency") == "CNY" and payment.get(f"{side}_amount") is not None:
            return Decimal(str(payment[f"{side}_amount"]))
    return None
