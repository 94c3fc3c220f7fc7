"""The coordinator's dependencies, taken from the gateway's runtime."""

from __future__ import annotations

from fpslink.context import Gateway
from fpslink.settlement.coordinator import Settlement
from fpslink.settlement.store import PgSettlementStore


def settlement(gw: Gateway) -> Settlement:
    """Settlement on this gateway's database and IBPS client. The clock and the crash hook are read
    at each call, so that a test can set them on the gateway while payments are in flight."""
    return Settlement(
        store=PgSettlementStore(gw.engine),
        ibps=gw.ibps,
        clock=lambda: gw.clock(),
        crash_hook=lambda point: gw.crash_hook(point),
    )
