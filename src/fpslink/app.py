"""The gateway application: routers, problem handlers, and a lifespan that owns the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from fpslink import __version__, logs
from fpslink import metrics as metrics_text
from fpslink.api import (
    access_routes,
    certification_edge,
    certification_routes,
    docs_routes,
    fast_payments,
    faults_routes,
    iso20022_routes,
    observability,
    problems,
    rate_limits,
    reconciliation_routes,
    request_limits,
    sandbox_routes,
    webhooks_routes,
)
from fpslink.api.routes import health_router, router
from fpslink.certification import service as certification_service
from fpslink.config import Settings, ready_to_serve
from fpslink.console import routes as console_routes
from fpslink.context import Gateway
from fpslink.db import create_engine, database_unavailable, one_line, utcnow
from fpslink.ibps_client import client_from_settings
from fpslink.payments.repository import UNFINISHED
from fpslink.settlement import recovery
from fpslink.webhooks import service as webhooks_service

log = logging.getLogger("fpslink")

DESCRIPTION = """
Sandbox of **Payment Connect**, the link between Hong Kong's FPS and the mainland's IBPS.

* Authenticate with `Authorization: Bearer <api key>` (a bank's key, or the operator key).
* Money is a decimal string with two places (`"100.00"`); currencies are `HKD` and `CNY`.
* Every error is `application/problem+json` with a stable `code`.
* Each bank has a quota of requests (`RateLimit-Policy` and `RateLimit` on every answer); over it,
  `429` with `Retry-After`. The operator's key is exempt.
* `POST /v1/payments` needs an `Idempotency-Key`; the other POSTs honour one when sent.
"""


NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    ibps_transport: httpx.AsyncBaseTransport | None = None,
    fast_path: bool = True,
) -> FastAPI:
    """The gateway; `fast_path=False` leaves POST /v1/payments to its FastAPI route alone (the parity
    tests compare the two)."""
    settings = settings or Settings()
    active_runs = certification_service.ActiveRuns()
    pending = metrics_text.PendingRefresher(states=tuple(state.value for state in UNFINISHED))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        ibps = client_from_settings(settings, transport=ibps_transport)
        gateway = Gateway(settings=settings, engine=engine, ibps=ibps, clock=clock, active_runs=active_runs)
        if settings.crash_at:
            gateway.crash_hook = kill_at(settings.crash_at)
        app.state.gateway = gateway
        clock_follower = await gateway.start_sandbox_clock()
        sweeper = (
            asyncio.create_task(recovery.run_forever(gateway), name="fpslink-recovery")
            if settings.recovery_enabled
            else None
        )
        dispatcher = gateway.webhook_dispatcher.start()
        watch = gateway.certification.start_watch()
        purger = gateway.retention.start()
        try:
            yield
        finally:
            await certification_service.stop_watch(watch)
            if gateway.payments.batcher is not None:
                await gateway.payments.batcher.aclose()
            await webhooks_service.stop(dispatcher)
            for task in (sweeper, purger):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await gateway.stop_sandbox_clock(clock_follower)
            await ibps.aclose()
            await engine.dispose()

    app = observability.ObservedApp(
        title="fpslink",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # served by docs_routes from files in the package, not by FastAPI from a CDN
        docs_url=None,
        redoc_url=None,
        # Prometheus (/metrics) is the sandbox's telemetry; FastAPI's OpenTelemetry hook would look
        # up its providers on every request (about 3% of a worker under load) to find none
        telemetry=NO_OPENTELEMETRY,
    )
    problems.install(app)
    app.include_router(router)
    app.include_router(access_routes.router)
    app.include_router(health_router)
    app.include_router(faults_routes.router)
    app.include_router(iso20022_routes.router)
    app.include_router(webhooks_routes.router)
    app.include_router(sandbox_routes.router)
    app.include_router(reconciliation_routes.router)
    app.include_router(certification_routes.router)
    app.include_router(console_routes.router)
    app.include_router(docs_routes.router)
    if fast_path:
        fast_payments.install(app)
    certification_edge.install(app, active_runs)  # in front of the fast path
    rate_limits.install(app)  # inside the request limits: an oversized request is refused unidentified
    request_limits.install(app, settings)
    if settings.trusted_proxy_list:
        # outermost of the app's middleware, so every part of the app sees the client's address and
        # scheme, not the proxy's (the request middleware around it, `ObservedApp`, reads neither)
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={
            200: {
                "content": {
                    "text/plain": {
                        "example": "# TYPE fpslink_payments_total counter\n"
                        'fpslink_payments_total{direction="NORTHBOUND",status="SETTLED"} 42.0\n'
                    }
                }
            }
        },
    )
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus exposition of the gateway's metrics."""
        gateway: Gateway = request.app.state.gateway
        try:
            await pending.refresh(lambda: recovery.pending_counts(gateway))
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # the counters still answer; the pending gauge keeps its last count
            log.warning("/metrics could not count the pending payments: %s", one_line(exc))
        return PlainTextResponse(metrics_text.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def kill_at(point: str) -> Callable[[str], None]:
    """A crash hook that SIGKILLs this process at one settlement step (FPSLINK_CRASH_AT)."""

    def hook(reached: str) -> None:
        if reached == point:
            log.warning("FPSLINK_CRASH_AT=%s reached: killing the process", point)
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


GC_THRESHOLDS = (50_000, 50, 100)
"""Collect the young generation every 50,000 allocations instead of 700: a payment allocates
thousands of short-lived objects, and the default made the collector about a tenth of a worker's
CPU under load (benchmarks/throughput.py: 910-934/s before, 1008-1043/s after, at 256 connections)."""


def tune_gc() -> None:
    """For a serving process: freeze what start-up built, then collect less often.

    Frozen objects (modules, the app, settings) are never scanned again. Only for long-running
    servers: objects frozen here are never freed, which a test process making many apps would feel.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory fpslink.app:app_from_env` (settings from FPSLINK_*).

    It refuses weak secrets itself (`ready_to_serve`), so that no way of serving skips the check;
    `fpslink serve` checks first as well, to say so in one message rather than from every worker.
    """
    settings, warnings = ready_to_serve(Settings())
    logs.configure(settings.log_format, os.environ.get("FPSLINK_LOG_LEVEL", "WARNING").upper())
    for warning in warnings:
        log.warning("%s", warning)
    app = create_app(settings)
    tune_gc()
    return app
