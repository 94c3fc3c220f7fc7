"""The skeleton's second service: POST /credit records one credit in its own database (1-row transaction).

    SKEL_BACK_DATABASE=postgresql://postgres@127.0.0.1:5432/fpslink_bench_skel_back \\
        uvicorn benchmarks.skeleton.back:app --host 127.0.0.1 --port 28713 --loop uvloop --http httptools
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response

POOL_SIZE = int(os.environ.get("SKEL_POOL_SIZE", "20"))


async def _no_reset(conn: Any) -> None:
    """Skip asyncpg's reset query on release: every transaction here is complete when it returns."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["SKEL_BACK_DATABASE"], min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/credit")
async def credit(request: Request) -> Response:
    body = json.loads(await request.body())
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO credits (payment_id, account_id, amount_minor) VALUES ($1, $2, $3)",
            body["payment_id"],
            body["account_id"],
            body["amount_minor"],
        )
    return Response(b'{"status":"POSTED"}', media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
