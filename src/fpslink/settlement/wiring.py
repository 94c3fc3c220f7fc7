"""The payment path's parts (acceptance and settlement), made from the gateway's runtime."""

from __future__ import annotations

from fpslink.context import Gateway
from fpslink.payments.acceptance import Acceptance, PgAcceptanceStore
from fpslink.settlement.coordinator import Settlement
from fpslink.settlement.store import PgSettlementStore


def acceptance(gw: Gateway) -> Acceptance:
    """Acceptance on this gateway's database, with its settings and clock."""
    return Acceptance(store=PgAcceptanceStore(gw.engine), settings=gw.settings, clock=lambda: gw.clock())


def settlement(gw: Gateway) -> Settlement:
    """Settlement on this gateway's database and IBPS client. The clock and the crash hook are read
    at each call, so that a test can set them on the gateway while payments are in flight."""
    return Settlement(
        store=PgSettlementStore(gw.engine),
        ibps=gw.ibps,
        clock=lambda: gw.clock(),
        crash_hook=lambda point: gw.crash_hook(point),
    )
