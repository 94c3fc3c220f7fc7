"""The gateway's runtime: what every service needs, built once per process by the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fpslink.config import Settings
from fpslink.db import utcnow
from fpslink.fx.domain import RateSheet
from fpslink.ibps_client import IbpsClient
from fpslink.principal import OPERATOR, Principal
from fpslink.settlement.batcher import Batcher

__all__ = ["OPERATOR", "Gateway", "Principal"]


def _no_crash(point: str) -> None:
    return None


@dataclass
class Gateway:
    settings: Settings
    engine: AsyncEngine
    ibps: IbpsClient
    clock: Callable[[], datetime] = utcnow
    crash_hook: Callable[[str], None] = _no_crash
    """Called at each named settlement step; tests make it raise to stop the flow there."""
    principals: dict[str, Principal] = field(default_factory=dict)
    """API key hash -> participant. Keys never change once issued, so caching is safe."""
    accounts: dict[str, Any] = field(default_factory=dict)
    """Account id -> AccountRecord. An account's owner, system and currency never change."""
    batcher: Batcher[Any] | None = None
    """The payment batcher of this process, made on first use (fpslink.payments.service.pipeline,
    which knows its items' type: naming it here would make this module import the payment path)."""

    @property
    def rates(self) -> RateSheet:
        return RateSheet(mid_hkd_cny=self.settings.fx_mid_hkd_cny, spread_bps=self.settings.fx_spread_bps)
