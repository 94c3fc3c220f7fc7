"""Count what one payment costs: database transactions and statements, and HTTP calls to mock_ibps.

Runs the gateway and mock_ibps in this process on temporary SQLite files (the counts do not depend
on the database), sends northbound and southbound payments, and prints the cost of each.

    .venv/bin/python benchmarks/roundtrips.py
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from fpslink import migrate
from fpslink.app import create_app
from fpslink.config import Settings
from mock_ibps import migrate as ibps_migrate
from mock_ibps.app import create_app as create_ibps_app
from mock_ibps.config import Settings as IbpsSettings

OPERATOR = "benchmark-operator-key-000"


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        name = "/".join("{id}" if len(p) == 36 else p for p in path.split("/"))
        self.calls[f"{request.method} {name}"] += 1
        return await self.inner.handle_async_request(request)


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fpslink-roundtrips-"))
    gateway_db = f"sqlite+aiosqlite:///{workdir / 'gateway.db'}"
    ibps_db = f"sqlite+aiosqlite:///{workdir / 'ibps.db'}"
    await asyncio.to_thread(migrate.upgrade, gateway_db)
    await asyncio.to_thread(ibps_migrate.upgrade, ibps_db)
    ibps_app = create_ibps_app(IbpsSettings(database_url=ibps_db, token="t"))
    counting = CountingTransport(httpx.ASGITransport(app=ibps_app))
    settings = Settings(
        database_url=gateway_db,
        ibps_url="http://ibps",
        ibps_token="t",
        operator_key=OPERATOR,
        recovery_enabled=False,
        southbound_hours="00:00-24:00",
    )
    app = create_app(settings, ibps_transport=counting)
    async with ibps_app.router.lifespan_context(ibps_app), app.router.lifespan_context(app):
        statements: Counter[str] = Counter()
        transactions = {"n": 0}

        @event.listens_for(app.state.gateway.engine.sync_engine, "before_cursor_execute")
        def _count(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
            verb = sql.split(None, 1)[0].upper()
            if verb not in {"BEGIN", "PRAGMA"}:
                statements[verb] += 1

        @event.listens_for(app.state.gateway.engine.sync_engine, "commit")
        def _commit(conn: Any) -> None:
            transactions["n"] += 1

        op = {"Authorization": f"Bearer {OPERATOR}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            keys, accounts = {}, {}
            for code, system, currency in (("BENCHHK", "FPS", "HKD"), ("BENCHCN", "IBPS", "CNY")):
                body = {"participant_id": code, "name": code, "system": system}
                keys[code] = (await http.post("/v1/participants", json=body, headers=op)).json()["api_key"]
                account = {
                    "participant_id": code,
                    "holder_name": "CHAN Tai Man",
                    "currency": currency,
                    "opening_balance": "100000.00",
                }
                accounts[code] = (await http.post("/v1/accounts", json=account, headers=op)).json()[
                    "account_id"
                ]
            proxy = {
                "proxy_type": "MOBILE",
                "proxy_value": "+8613800138000",
                "account_id": accounts["BENCHCN"],
            }
            await http.post("/v1/proxies", json=proxy, headers={"Authorization": f"Bearer {keys['BENCHCN']}"})

            cases = {
                "northbound, creditor by +86 proxy": (
                    "BENCHHK",
                    {"proxy_type": "MOBILE", "proxy_value": "+8613800138000"},
                    "HKD",
                ),
                "northbound, creditor by account": ("BENCHHK", {"account_id": accounts["BENCHCN"]}, "HKD"),
                "southbound, creditor by account": ("BENCHCN", {"account_id": accounts["BENCHHK"]}, "CNY"),
            }
            print(f"{'payment':<36}{'status':<9}{'txns':>5}{'stmts':>7}  statements by kind; HTTP calls")
            for name, (bank, creditor, currency) in cases.items():
                headers = {"Authorization": f"Bearer {keys[bank]}", "Idempotency-Key": str(uuid.uuid4())}
                payment: dict[str, Any] = {
                    "debtor_account_id": accounts[bank],
                    "creditor": creditor,
                    "amount": "100.00",
                    "currency": currency,
                    "purpose": "BENCH",
                }
                await http.post("/v1/payments", json=payment, headers=headers)  # warm the key cache
                statements.clear()
                counting.calls.clear()
                transactions["n"] = 0
                headers["Idempotency-Key"] = str(uuid.uuid4())
                response = await http.post("/v1/payments", json=payment, headers=headers)
                print(
                    f"{name:<36}{response.json()['status']:<9}{transactions['n']:>5}"
                    f"{sum(statements.values()):>7}  {dict(statements)}; {dict(counting.calls)}"
                )


if __name__ == "__main__":
    asyncio.run(main())
