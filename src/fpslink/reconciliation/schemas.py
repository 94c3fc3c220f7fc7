"""API models of the reconciliation endpoints."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fpslink.api.schemas import Request


class ReconciliationCreate(Request):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"business_date": "2026-06-22"}]},
    )
    business_date: date = Field(description="The UTC+8 business date to reconcile, YYYY-MM-DD")


class ReconciliationOut(BaseModel):
    """The run and its summary; `GET /v1/reconciliations/{id}` adds every break."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "reconciliation_id": "6d0f3b5e-2a61-4f0e-9d43-5c8b2f1e7a90",
                    "business_date": "2026-06-22",
                    "status": "COMPLETED",
                    "break_count": 1,
                    "breaks_by_type": {"AMOUNT_MISMATCH": 1},
                    "totals": {
                        "gateway": [
                            {
                                "direction": "NORTHBOUND",
                                "status": "SETTLED",
                                "currency": "HKD",
                                "count": 12,
                                "sum": "5400.00",
                            }
                        ]
                    },
                    "positions": {"net_cny_due_to_ibps": "4955.58"},
                    "fx": [
                        {
                            "pair": "HKD->CNY",
                            "count": 12,
                            "volume_weighted_rate": "0.917700",
                            "spread_earned": "12.42",
                            "spread_currency": "CNY",
                        }
                    ],
                }
            ]
        },
    )
    reconciliation_id: str
    business_date: str
    status: str = Field(description="COMPLETED, or FAILED with `error`")
    break_count: int | None
    breaks_by_type: dict[str, int] = Field(default_factory=dict)
    totals: dict[str, Any] = Field(default_factory=dict)
    positions: dict[str, Any] = Field(default_factory=dict)
    fx: list[dict[str, Any]] = Field(default_factory=list)
    timing_differences: dict[str, Any] = Field(
        default_factory=dict,
        description="Not breaks: payments of the day matched with an IBPS entry of the previous or next "
        "day across the midnight cut-off; `count`, `items` (the first 1,000), `looked_up`, `not_looked_up`",
    )
