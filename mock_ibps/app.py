"""The mock_ibps FastAPI application: routes, error handlers, and an engine per application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mock_ibps import camt053, fast, statement
from mock_ibps.api import health_router, router
from mock_ibps.clock import IbpsClock
from mock_ibps.config import Settings, ready_to_serve
from mock_ibps.db import create_engine
from mock_ibps.errors import install_error_handlers
from mock_ibps.faults import FaultInjector
from mock_ibps.retention import IbpsRetention
from mock_ibps.service import IbpsLedger

log = logging.getLogger("mock_ibps")


def create_app(settings: Settings | None = None, *, fast_path: bool = True) -> FastAPI:
    """Build the app; the engine lives for the lifespan, so each app (and test) owns its own.

    Every route but /healthz needs the token, so the app publishes no OpenAPI document or docs
    pages: the wire contract is `ibps_wire.schemas`, and the gateway is the one caller.
    `fast_path=False` leaves the batch and the proxy look-up to their FastAPI routes alone (the
    parity tests compare both).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        clock = IbpsClock(engine)
        await clock.start()
        app.state.clock = clock
        ledger = IbpsLedger(engine, clock=clock.now)
        app.state.ledger = ledger
        app.state.faults = FaultInjector()
        purger = IbpsRetention(engine, clock=clock.now, settings=settings).start()
        try:
            yield
        finally:
            if purger is not None:
                purger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purger
            await clock.stop()
            await ledger.close()
            await engine.dispose()

    app = FastAPI(
        title="mock_ibps",
        summary="Simulated mainland IBPS for the fpslink sandbox",
        version="1",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # no OpenTelemetry here: FastAPI would look up its providers on every request to find none
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(router)
    app.include_router(statement.router)
    app.include_router(camt053.router)
    if fast_path:
        fast.install(app)
    return app


def serve_app() -> FastAPI:
    """Factory for a serving process: the app, then the collector tuned for a long-running server.

    It refuses a weak token itself (`ready_to_serve`), whichever way it is served.

    Start-up objects are frozen (never scanned again) and the young generation is collected every
    50,000 allocations instead of 700; a batch allocates many short-lived objects, and the default
    spent a noticeable share of the process's CPU in the collector.
    """
    settings, warnings = ready_to_serve(Settings())
    for warning in warnings:
        log.warning("%s", warning)
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    return app
