"""Whether the gateway's dependencies answer: its database and IBPS (`GET /healthz`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fpslink.uow import UnitsOfWork


class IbpsHealth(Protocol):
    async def healthy(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class HealthReport:
    database: str
    """"ok", or "error: <exception type>" (never its message, which may name hosts)."""
    ibps: str
    """"ok" or "unreachable": the gateway still answers what needs no IBPS."""

    @property
    def ok(self) -> bool:
        return self.database == "ok"


class HealthService:
    def __init__(self, uow: UnitsOfWork, ibps: IbpsHealth) -> None:
        self._uow = uow
        self._ibps = ibps

    async def check(self) -> HealthReport:
        try:
            async with self._uow() as tx:
                await tx.ping()
            database = "ok"
        except Exception as exc:
            database = f"error: {type(exc).__name__}"
        ibps = "ok" if await self._ibps.healthy() else "unreachable"
        return HealthReport(database=database, ibps=ibps)
