"""The gateway's runtime and composition root, built once per process by the app's lifespan.

`Gateway` holds what the process owns (settings, engine, IBPS client, clock, crash hook) and makes
each service with only what that service uses: a unit-of-work factory or a store of its own, the IBPS
client or the part of it it calls, the clock, the settings. Routes reach a service through a FastAPI
dependency (`fpslink.api.deps`).

Time is the sandbox's: the wall clock (`clock`) plus the test clock's offset (`sandbox_offset`),
which this process keeps in memory and follows from the database (docs/architecture.md#the-test-clock).
Only what must agree with the world outside the sandbox reads the wall clock alone: the webhook
signature's `t=` and the console's sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from fpslink.certification.service import ActiveRuns, CertificationService
from fpslink.clock.service import ClockService
from fpslink.config import Settings
from fpslink.db import Clock, utcnow
from fpslink.directory.service import DirectoryService
from fpslink.fx.service import FxService
from fpslink.health import HealthService
from fpslink.ibps_client import IbpsClient
from fpslink.idempotency.service import IdempotencyService
from fpslink.iso20022.exchange import Iso20022Service
from fpslink.limits.service import LimitsService
from fpslink.participants.service import ParticipantsService
from fpslink.payments.acceptance import Acceptance, PgAcceptanceStore
from fpslink.payments.service import PaymentsService
from fpslink.payments.store import PgPaymentsStore
from fpslink.principal import OPERATOR, Principal
from fpslink.ratelimit.service import RateLimiter
from fpslink.reconciliation.service import ReconciliationService
from fpslink.retention.service import RetentionService
from fpslink.settlement.coordinator import Settlement
from fpslink.settlement.store import PgSettlementStore
from fpslink.uow import UnitsOfWork, units_of_work
from fpslink.webhooks.service import WebhookDispatcher, WebhooksService
from fpslink.webhooks.targets import Resolver, system_resolver
from ibps_wire import sandbox_clock

__all__ = ["OPERATOR", "Gateway", "Principal"]


def _no_crash(point: str) -> None:
    return None


@dataclass
class Gateway:
    """What one gateway process owns, and the services made from it.

    The services are made once, here, each with what it uses; nothing else constructs them. Each
    reads the clock (`now`) and the crash hook at each use, so that a test can change them on a
    running gateway.
    """

    settings: Settings
    engine: AsyncEngine
    ibps: IbpsClient
    clock: Clock = utcnow
    """The wall clock: real time in a process, a fake one in tests."""
    crash_hook: Callable[[str], None] = _no_crash
    """Called at each named settlement step; tests make it raise to stop the flow there."""
    sandbox_offset: sandbox_clock.SandboxOffset = field(default_factory=sandbox_clock.SandboxOffset)
    """How far the sandbox's time runs ahead of `clock` (the test clock); zero until moved."""
    resolver: Resolver = system_resolver
    """Host names to addresses for webhook targets; tests set a fake one on a running gateway."""
    active_runs: ActiveRuns = field(default_factory=ActiveRuns)
    """The certification runs in progress, by bank: the API edge reads them on each request."""
    uow: UnitsOfWork = field(init=False, repr=False)
    """Units of work on this engine: the services', the console's and the tools'."""
    participants: ParticipantsService = field(init=False, repr=False)
    rate_limiter: RateLimiter = field(init=False, repr=False)
    """Each bank's quota, leased from the shared buckets (`fpslink.api.rate_limits` applies it)."""
    fx: FxService = field(init=False, repr=False)
    directory: DirectoryService = field(init=False, repr=False)
    limits: LimitsService = field(init=False, repr=False)
    idempotency: IdempotencyService = field(init=False, repr=False)
    webhooks: WebhooksService = field(init=False, repr=False)
    webhook_dispatcher: WebhookDispatcher = field(init=False, repr=False)
    reconciliation: ReconciliationService = field(init=False, repr=False)
    health: HealthService = field(init=False, repr=False)
    settlement: Settlement = field(init=False, repr=False)
    """The two-phase coordinator's dependencies: the payment batches' and the recovery sweep's."""
    payments: PaymentsService = field(init=False, repr=False)
    iso20022: Iso20022Service = field(init=False, repr=False)
    sandbox_clock: ClockService = field(init=False, repr=False)
    certification: CertificationService = field(init=False, repr=False)
    retention: RetentionService = field(init=False, repr=False)
    """The retention job: its background loop and `fpslink retention`."""

    def now(self) -> datetime:
        """The sandbox's time, read at each call: what every service is given, so that a test can set
        `clock` on a running gateway, or the test clock move it, and every part sees the same time.
        No query: the offset is in memory."""
        return self.clock() + self.sandbox_offset.value

    def wall_now(self) -> datetime:
        """The wall clock alone, for what a party outside the sandbox checks against its own clock."""
        return self.clock()

    async def read_sandbox_offset(self) -> None:
        """Read the test clock's offset once (start-up, and each command that works offline); raises
        when the database cannot be read."""
        self.sandbox_offset.set(await self._stored_offset())

    async def start_sandbox_clock(self) -> asyncio.Task[None] | None:
        """Read the offset before serving, then follow it: with the test clock on, for good (LISTEN on
        a connection of its own); off, only until a first read succeeds (`sandbox_clock.start`)."""
        return await sandbox_clock.start(
            self._stored_offset,
            sandbox_clock.connector(self.engine),
            self.sandbox_offset,
            listen=self.settings.sandbox_clock,
            name="fpslink-sandbox-clock",
        )

    async def _stored_offset(self) -> timedelta:
        async with self.uow() as tx:
            return (await tx.clock.read()).offset

    @staticmethod
    async def stop_sandbox_clock(task: asyncio.Task[None] | None) -> None:
        await sandbox_clock.stop(task)

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """The resolver, read at each call: what the webhook services are given."""
        return await self.resolver(host, port)

    def __post_init__(self) -> None:
        self.uow = units_of_work(self.engine)
        self.participants = ParticipantsService(self.uow, self.ibps, clock=self.now, settings=self.settings)
        self.rate_limiter = RateLimiter(self.uow, max_wait_s=self.settings.rate_limit_max_wait_s)
        self.fx = FxService(self.uow, clock=self.now, settings=self.settings)
        self.directory = DirectoryService(self.uow, self.ibps, clock=self.now, participants=self.participants)
        self.limits = LimitsService(
            self.uow, clock=self.now, settings=self.settings, participants=self.participants
        )
        self.idempotency = IdempotencyService(self.uow, clock=self.now, settings=self.settings)
        self.webhooks = WebhooksService(
            self.uow, clock=self.now, settings=self.settings, resolve=self.resolve
        )
        self.webhook_dispatcher = WebhookDispatcher(
            self.uow, clock=self.now, wall=self.wall_now, settings=self.settings, resolve=self.resolve
        )
        self.reconciliation = ReconciliationService(
            self.uow, self.engine.connect, self.ibps, clock=self.now, settings=self.settings
        )
        self.health = HealthService(self.uow, self.ibps)
        self.retention = RetentionService(self.engine.connect, clock=self.now, settings=self.settings)
        self.settlement = Settlement(
            store=PgSettlementStore(self.engine),
            ibps=self.ibps,
            clock=self.now,
            crash_hook=lambda point: self.crash_hook(point),
        )
        self.sandbox_clock = ClockService(
            self.uow, self.ibps, wall=self.wall_now, offset=self.sandbox_offset, settings=self.settings
        )
        self.certification = CertificationService(
            self.uow,
            clock=self.now,
            wall=self.wall_now,
            settings=self.settings,
            directory=self.directory,
            active=self.active_runs,
        )
        self.payments = PaymentsService(
            PgPaymentsStore(self.uow),
            directory=self.directory,
            fx=self.fx,
            ibps=self.ibps,
            acceptance=Acceptance(store=PgAcceptanceStore(self.uow), settings=self.settings, clock=self.now),
            settlement=self.settlement,
            settings=self.settings,
            clock=self.now,
            crash_hook=lambda point: self.crash_hook(point),
        )
        self.iso20022 = Iso20022Service(self.uow, self.payments, settings=self.settings, clock=self.now)
