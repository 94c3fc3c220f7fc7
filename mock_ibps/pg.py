"""mock_ibps's lane for the batch statements: plain asyncpg with constant SQL, in SQLAlchemy's
transaction.

The helpers are shared with the gateway through ``ibps_wire.pg``, so this service still imports
nothing from ``fpslink``; its statements live in ``repository.py`` and ``statement.py``.
"""

from __future__ import annotations

from ibps_wire.pg import raw, row_count

__all__ = ["raw", "row_count"]
