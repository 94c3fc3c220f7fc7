"""The gateway application: routers, problem handlers, and a lifespan that owns the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fpslink import __version__
from fpslink.api import problems
from fpslink.api.routes import health_router, router
from fpslink.config import Settings
from fpslink.context import Gateway
from fpslink.db import create_engine, utcnow
from fpslink.ibps_client import IbpsClient
from fpslink.settlement import recovery

log = logging.getLogger("fpslink")

DESCRIPTION = """
Sandbox of **Payment Connect**, the link between Hong Kong's FPS and the mainland's IBPS.

* Authenticate with `Authorization: Bearer <api key>` (a bank's key, or the operator key).
* Money is a decimal string with two places (`"100.00"`); currencies are `HKD` and `CNY`.
* Every error is `application/problem+json` with a stable `code`.
* `POST /v1/payments` needs an `Idempotency-Key`; the other POSTs honour one when sent.
"""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    ibps_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        ibps = IbpsClient(
            base_url=settings.ibps_url,
            token=settings.ibps_token,
            timeout_s=settings.ibps_timeout_s,
            max_connections=settings.ibps_max_connections,
            transport=ibps_transport,
        )
        gateway = Gateway(settings=settings, engine=engine, ibps=ibps, clock=clock)
        app.state.gateway = gateway
        sweeper = (
            asyncio.create_task(recovery.run_forever(gateway), name="fpslink-recovery")
            if settings.recovery_enabled
            else None
        )
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            await ibps.aclose()
            await engine.dispose()

    app = FastAPI(
        title="fpslink",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(router)
    app.include_router(health_router)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus exposition of the gateway's metrics."""
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory fpslink.app:app_from_env` (settings from FPSLINK_*)."""
    return create_app(Settings())
