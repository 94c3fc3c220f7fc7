"""The skeleton's front service: the best single hop we can build, the yardstick for fpslink's throughput.

POST /pay {payment_id, debtor, creditor, amount_minor}: one asyncpg transaction on its own database
(debit and credit two accounts, insert the transfer), then ONE HTTP call to back.py, which records
the credit in another database. No batching, no limits, FX, idempotency or recovery; no pool reset
on release; a raw keep-alive HTTP client. Self-contained: it imports nothing from fpslink.

    SKEL_FRONT_DATABASE=postgresql://postgres@127.0.0.1:5432/fpslink_bench_skel_front \\
    SKEL_BACK_URL=http://127.0.0.1:28713 \\
        uvicorn benchmarks.skeleton.front:app --host 127.0.0.1 --port 28712 --workers 2 \\
        --loop uvloop --http httptools
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from fastapi import FastAPI, Request, Response

try:
    from benchmarks.skeleton.rawhttp import HttpError, Pool
except ImportError:  # run as a script from this directory
    from rawhttp import HttpError, Pool  # type: ignore[no-redef,import-not-found]

POOL_SIZE = int(os.environ.get("SKEL_POOL_SIZE", "20"))
HTTP_CONNECTIONS = int(os.environ.get("SKEL_HTTP_CONNECTIONS", "100"))


async def _no_reset(conn: Any) -> None:
    """Skip asyncpg's reset query on release: every transaction here is complete when it returns."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    back = urlsplit(os.environ["SKEL_BACK_URL"])
    app.state.pool = await asyncpg.create_pool(
        os.environ["SKEL_FRONT_DATABASE"], min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset
    )
    app.state.back = Pool(back.hostname or "127.0.0.1", back.port or 80, size=HTTP_CONNECTIONS, timeout_s=10)
    try:
        yield
    finally:
        await app.state.back.aclose()
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/pay")
async def pay(request: Request) -> Response:
    body = json.loads(await request.body())
    payment_id, amount = body["payment_id"], body["amount_minor"]
    # both rows locked in account order, so two opposite payments never deadlock
    moves = sorted(((body["debtor"], -amount), (body["creditor"], amount)))
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        for account_id, delta in moves:
            await conn.execute(
                "UPDATE accounts SET balance_minor = balance_minor + $2 WHERE account_id = $1",
                account_id,
                delta,
            )
        await conn.execute(
            "INSERT INTO transfers (payment_id, debit_account_id, credit_account_id, amount_minor)"
            " VALUES ($1, $2, $3, $4)",
            payment_id,
            body["debtor"],
            body["creditor"],
            amount,
        )
    credit = json.dumps({"payment_id": payment_id, "account_id": body["creditor"], "amount_minor": amount})
    try:
        answer = await request.app.state.back.request("POST", "/credit", credit.encode())
    except HttpError as exc:
        return Response(
            json.dumps({"status": "ERROR", "detail": str(exc)}), 502, media_type="application/json"
        )
    if answer.status != 200:
        return Response(b'{"status":"ERROR"}', 502, media_type="application/json")
    return Response(
        json.dumps({"payment_id": payment_id, "status": "SETTLED"}), 201, media_type="application/json"
    )


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
