"""The gateway's lane for the batch statements of the payment path: plain asyncpg, constant SQL.

The helpers are shared with mock_ibps (`ibps_wire.pg`, docs/decisions/0003-raw-asyncpg-lane.md);
the gateway's statements live in its repositories.
"""

from __future__ import annotations

from ibps_wire.pg import alone, array_type, ident, insert_rows, raw

__all__ = ["alone", "array_type", "ident", "insert_rows", "raw"]
