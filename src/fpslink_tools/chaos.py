"""`fpslink chaos`: drive payments both ways while IBPS misbehaves and the gateway is SIGKILLed.

It builds its own PostgreSQL-backed stack (fresh databases, mock_ibps and a gateway, all on
127.0.0.1), seeds banks and accounts, injects seeded faults into every IBPS call, sends payments
concurrently like a bank would (retrying with the same Idempotency-Key when the gateway is gone),
kills and restarts the gateway process group several times, lets recovery finish, and then audits:
payments by final status, money created or lost per ledger and currency, holds left, payments
still pending, faults injected, and the invariant check. Any non-zero finding fails the run.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from fpslink.config import Settings
from fpslink_tools.stack import Stack, drop_databases, fresh_databases, invariant_violations
from ibps_wire.credentials import new_secret

FAULT_CALLS = ("prepare", "commit", "abort", "lookup")
FAULT_KINDS = ("error", "timeout", "lost_reply", "duplicate")
BANKS = (("CHAOSHK1", "FPS"), ("CHAOSHK2", "FPS"), ("CHAOSCN1", "IBPS"), ("CHAOSCN2", "IBPS"))


@dataclass(frozen=True)
class ChaosConfig:
    payments: int = 1000
    fault_rate: float = 0.1
    kills: int = 3
    seed: int = 1
    concurrency: int = 32
    workers: int = 2
    accounts_per_bank: int = 10
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/fpslink_chaos"
    host: str = "127.0.0.1"
    port: int = 18700
    ibps_port: int = 18701
    max_seconds: float = 1800.0
    workdir: Path = Path(".fpslink/chaos")
    keep_databases: bool = False


@dataclass
class ChaosReport:
    payments: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    money_drift: dict[str, Decimal] = field(default_factory=dict)
    holds_left: dict[str, Decimal] = field(default_factory=dict)
    pending: int = 0
    faults_injected: dict[str, dict[str, int]] = field(default_factory=dict)
    kills: int = 0
    client_retries: int = 0
    unanswered: int = 0
    invariant_violations: list[str] = field(default_factory=list)
    drive_seconds: float = 0.0
    total_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not any(self.money_drift.values())
            and not any(self.holds_left.values())
            and self.pending == 0
            and self.unanswered == 0
            and not self.invariant_violations
        )


@dataclass(frozen=True)
class Spec:
    key: str
    bank: str
    body: dict[str, Any]


class Driver:
    """Sends the payments like a careful bank: same key on every retry, bounded patience."""

    def __init__(self, cfg: ChaosConfig, base_url: str, keys: dict[str, str], report: ChaosReport) -> None:
        self.cfg = cfg
        self.base_url = base_url
        self.keys = keys
        self.report = report
        self.done = 0
        self.changed = asyncio.Event()
        self.answers: dict[str, dict[str, Any]] = {}

    def _finished(self) -> None:
        self.done += 1
        self.changed.set()

    async def send(self, http: httpx.AsyncClient, spec: Spec) -> None:
        headers = {"Authorization": f"Bearer {self.keys[spec.bank]}", "Idempotency-Key": spec.key}
        give_up = time.monotonic() + 120
        pause = 0.1
        while time.monotonic() < give_up:
            try:
                response = await http.post("/v1/payments", json=spec.body, headers=headers)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code in (201, 202):
                self.answers[spec.key] = response.json()
                self._finished()
                return
            if response is not None and response.status_code not in (409, 500, 502, 503):
                raise RuntimeError(f"payment {spec.key}: unexpected {response.status_code} {response.text}")
            self.report.client_retries += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
        self.report.unanswered += 1
        self._finished()


def plan(cfg: ChaosConfig, accounts: dict[str, list[dict[str, Any]]]) -> list[Spec]:
    """The payments to send, fixed by the seed."""
    rng = random.Random(cfg.seed)
    hk_accounts = accounts["CHAOSHK1"] + accounts["CHAOSHK2"]
    cn_accounts = accounts["CHAOSCN1"] + accounts["CHAOSCN2"]
    specs = []
    for _ in range(cfg.payments):
        northbound = rng.random() < 0.6
        debtor = rng.choice(hk_accounts if northbound else cn_accounts)
        creditor = rng.choice(cn_accounts if northbound else hk_accounts)
        amount = f"{rng.randint(100, 50_000) / 100:.2f}"
        by_proxy = rng.random() < 0.5 and creditor.get("proxy")
        body = {
            "debtor_account_id": debtor["account_id"],
            "creditor": {"proxy_type": "MOBILE", "proxy_value": creditor["proxy"]}
            if by_proxy
            else {"account_id": creditor["account_id"]},
            "amount": amount,
            "currency": debtor["currency"],
            "purpose": "OTHER",
        }
        specs.append(Spec(str(uuid.UUID(int=rng.getrandbits(128), version=4)), debtor["bank"], body))
    return specs


async def seed_world(
    http: httpx.AsyncClient, operator: dict[str, str], cfg: ChaosConfig
) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]]]:
    keys: dict[str, str] = {}
    accounts: dict[str, list[dict[str, Any]]] = {}
    rng = random.Random(cfg.seed ^ 0x5EED)
    for code, system in BANKS:
        created = await http.post(
            "/v1/participants",
            json={"participant_id": code, "name": code, "system": system},
            headers=operator,
        )
        created.raise_for_status()
        keys[code] = created.json()["api_key"]
        accounts[code] = []
        for i in range(cfg.accounts_per_bank):
            currency = "CNY" if system == "IBPS" or i % 4 == 3 else "HKD"
            opened = await http.post(
                "/v1/accounts",
                json={
                    "participant_id": code,
                    "holder_name": "CHAN Tai Man" if system == "FPS" else "张小明",
                    "currency": currency,
                    "opening_balance": "100000000.00",
                },
                headers=operator,
            )
            opened.raise_for_status()
            account = {"account_id": opened.json()["account_id"], "currency": currency, "bank": code}
            if currency == ("HKD" if system == "FPS" else "CNY"):
                number = (
                    f"+85296{rng.randrange(10**6):06d}"
                    if system == "FPS"
                    else f"+86138{rng.randrange(10**8):08d}"
                )
                registered = await http.post(
                    "/v1/proxies",
                    json={"proxy_type": "MOBILE", "proxy_value": number, "account_id": account["account_id"]},
                    headers={"Authorization": f"Bearer {keys[code]}"},
                )
                if registered.status_code == 201:
                    account["proxy"] = registered.json()["proxy_value"]
            accounts[code].append(account)
    return keys, accounts


async def balances(
    http: httpx.AsyncClient, operator: dict[str, str], accounts: list[dict[str, Any]]
) -> dict[str, tuple[Decimal, Decimal]]:
    found = {}
    for account in accounts:
        body = (await http.get(f"/v1/accounts/{account['account_id']}", headers=operator)).json()
        found[account["account_id"]] = (Decimal(body["balance"]), Decimal(body["held"]))
    return found


async def all_payments(http: httpx.AsyncClient, operator: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/payments", params=params, headers=operator)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def run(cfg: ChaosConfig, *, progress: Any = None) -> ChaosReport:
    report = ChaosReport(payments=cfg.payments)
    started = time.monotonic()
    gateway_db = cfg.database_url
    ibps_db = await fresh_databases(gateway_db)
    operator_key = new_secret("chaos_operator_")
    token = new_secret("chaos_ibps_")
    env = {
        "FPSLINK_DATABASE_URL": gateway_db,
        "FPSLINK_IBPS_URL": f"http://{cfg.host}:{cfg.ibps_port}",
        "FPSLINK_IBPS_TOKEN": token,
        "FPSLINK_OPERATOR_KEY": operator_key,
        "FPSLINK_NORTHBOUND_DAILY_HKD": "1000000000",
        "FPSLINK_NORTHBOUND_YEARLY_HKD": "1000000000",
        "FPSLINK_SOUTHBOUND_HOURS": "00:00-24:00",
        "FPSLINK_RATE_LIMIT_QUOTA": "10000000",
        "FPSLINK_RATE_LIMIT_WINDOW_S": "1",
        "FPSLINK_IBPS_TIMEOUT_S": "0.5",
        "FPSLINK_IBPS_RETRIES": "2",
        "FPSLINK_IBPS_BREAKER_THRESHOLD": "1000",
        "FPSLINK_PAYMENT_DEADLINE_S": "3",
        "FPSLINK_SETTLEMENT_TIMEOUT_S": "5",
        "FPSLINK_RECOVERY_INTERVAL_S": "1",
        "FPSLINK_REQUEST_LEASE_S": "6",
    }
    stack = Stack(cfg, env, {"MOCK_IBPS_DATABASE_URL": ibps_db, "MOCK_IBPS_TOKEN": token})
    operator = {"Authorization": f"Bearer {operator_key}"}
    base_url = f"http://{cfg.host}:{cfg.port}"
    try:
        await stack.start_ibps()
        await stack.start_gateway()
        limits = httpx.Limits(max_connections=cfg.concurrency + 8)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
            keys, accounts = await seed_world(http, operator, cfg)
            every = [a for bank in accounts.values() for a in bank]
            before = await balances(http, operator, every)
            rng = random.Random(cfg.seed)
            for i, (call, kind) in enumerate((c, k) for c in FAULT_CALLS for k in FAULT_KINDS):
                rule = {
                    "call": call,
                    "kind": kind,
                    "probability": cfg.fault_rate / len(FAULT_KINDS),
                    "seed": cfg.seed * 1000 + i,
                    "hang_ms": 1500,
                }
                (await http.post("/v1/sandbox/faults", json=rule, headers=operator)).raise_for_status()
            latency = {
                "call": "prepare",
                "kind": "latency",
                "probability": cfg.fault_rate,
                "seed": rng.randrange(10**9),
                "latency_ms": 20,
            }
            (await http.post("/v1/sandbox/faults", json=latency, headers=operator)).raise_for_status()

            specs = plan(cfg, accounts)
            driver = Driver(cfg, base_url, keys, report)
            queue: asyncio.Queue[Spec] = asyncio.Queue()
            for spec in specs:
                queue.put_nowait(spec)
            kill_at = [cfg.payments * (i + 1) // (cfg.kills + 1) for i in range(cfg.kills)]

            async def worker() -> None:
                while not queue.empty():
                    spec = queue.get_nowait()
                    await driver.send(http, spec)
                    if progress is not None:
                        progress(driver.done)

            async def killer() -> None:
                for threshold in kill_at:
                    while driver.done < threshold:
                        driver.changed.clear()
                        await driver.changed.wait()
                    stack.kill_gateway()
                    report.kills += 1
                    await asyncio.sleep(0.3)
                    await stack.start_gateway()

            drive_started = time.monotonic()
            workers = [asyncio.create_task(worker()) for _ in range(cfg.concurrency)]
            kill_task = asyncio.create_task(killer())
            await asyncio.wait_for(asyncio.gather(*workers), timeout=cfg.max_seconds)
            kill_task.cancel()
            report.drive_seconds = time.monotonic() - drive_started

            injected = (await http.get("/v1/sandbox/faults", headers=operator)).json()["injected"]
            report.faults_injected = injected
            (await http.delete("/v1/sandbox/faults", headers=operator)).raise_for_status()

            settle_by = time.monotonic() + 120
            while time.monotonic() < settle_by:
                pending = (
                    await http.get("/v1/payments", params={"status": "PENDING", "limit": 1}, headers=operator)
                ).json()["items"]
                if not pending:
                    break
                await asyncio.sleep(1.0)

            payments = await all_payments(http, operator)
            after = await balances(http, operator, every)
            report.pending = sum(1 for p in payments if p["status"] == "PENDING")
            report.by_status = Counter(p["status"] for p in payments)
            report.by_reason = Counter(p["reason_code"] for p in payments if p["status"] == "REJECTED")
            report.money_drift, report.holds_left = audit(payments, every, before, after)

        settings = Settings(
            database_url=gateway_db,
            ibps_url=env["FPSLINK_IBPS_URL"],
            ibps_token=token,
            operator_key=operator_key,
        )
        report.invariant_violations = await invariant_violations(settings)
    finally:
        stack.stop()
        if not cfg.keep_databases:
            await drop_databases(gateway_db)
    report.total_seconds = time.monotonic() - started
    return report


def audit(
    payments: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    before: dict[str, tuple[Decimal, Decimal]],
    after: dict[str, tuple[Decimal, Decimal]],
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Per ledger and currency: actual balance change minus what settled payments explain."""
    ledger_of = {a["account_id"]: ("FPS" if a["bank"].startswith("CHAOSHK") else "IBPS") for a in accounts}
    currency_of = {a["account_id"]: a["currency"] for a in accounts}
    drift: dict[str, Decimal] = {}
    holds: dict[str, Decimal] = {}
    for account_id, (balance, held) in after.items():
        label = f"{ledger_of[account_id]} {currency_of[account_id]}"
        drift[label] = drift.get(label, Decimal(0)) + balance - before[account_id][0]
        holds[label] = holds.get(label, Decimal(0)) + held
    for p in payments:
        if p["status"] != "SETTLED":
            continue
        debtor, creditor = p["debtor_account_id"], p["creditor_account_id"]
        for account_id, amount in (
            (debtor, -Decimal(p["source_amount"])),
            (creditor, Decimal(p["target_amount"])),
        ):
            if account_id in ledger_of:
                label = f"{ledger_of[account_id]} {currency_of[account_id]}"
                drift[label] = drift.get(label, Decimal(0)) - amount
    return drift, holds
