"""Helpers for the gateway's integration tests: a controllable clock, banks, accounts, payments."""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from fpslink.config import Settings
from fpslink.context import Gateway
from fpslink.iso20022 import pacs002
from fpslink_tools.embedded_pg import EmbeddedPostgres
from fpslink_tools.sandbox import SandboxProcess
from ibps_wire.credentials import new_secret

IBPS_TOKEN = new_secret("test_ibps_")
OPERATOR_KEY = new_secret("test_operator_")
"""Generated per test process, as an install's are: the servers the tests start refuse fixed ones."""
NOON_HKT = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
"""12:00 in Hong Kong on the day Payment Connect went live: inside every service window."""


class FakeClock:
    def __init__(self, start: datetime = NOON_HKT) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Crash(BaseException):
    """Stands for the process dying at a settlement step (`crash_at`)."""


def crash_at(point: str) -> Callable[[str], None]:
    """A crash hook (`Gateway.crash_hook`) that stops the payment's flow at one step."""

    def hook(reached: str) -> None:
        if reached == point:
            raise Crash(point)

    return hook


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_environment() -> dict[str, str]:
    """This process's environment without FPSLINK_* and MOCK_IBPS_*: a user's shell, in which the
    commands run beside a sandbox find it by its `.fpslink/` alone."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("FPSLINK_", "MOCK_IBPS_"))}


@contextlib.contextmanager
def sandbox_in_tmp(prefix: str) -> Iterator[tuple[Path, SandboxProcess, int]]:
    """`fpslink sandbox` (one worker, on ports that are not its defaults) in a directory of its own:
    that directory, the running sandbox and its mock_ibps port. The directory is under /tmp, not
    pytest's, whose permissions concurrent sessions may change under a running server."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    ibps_port = free_port()
    running = SandboxProcess(
        workdir, ["--port", str(free_port()), "--ibps-port", str(ibps_port), "--workers", "1"]
    )
    try:
        running.wait_ready(180)
        yield workdir, running, ibps_port
    finally:
        running.interrupt()
        server = EmbeddedPostgres(workdir / ".fpslink" / "pg")
        if server.running() is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def unreachable_database_settings() -> Settings:
    """A gateway whose PostgreSQL is out of reach: nothing listens on the port."""
    return Settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere",
        operator_key=OPERATOR_KEY,
        recovery_enabled=False,
    )


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


def start_process(
    args: list[str], *, env: dict[str, str], health_url: str, log: Path
) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT
    )
    wait_healthy(health_url, process, log)
    return process


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def hk_mobile() -> str:
    """A fresh valid Hong Kong mobile number (the +852 96 block is all mobile)."""
    return f"+85296{random.randrange(10**6):06d}"


def cn_mobile() -> str:
    return f"+86138{random.randrange(10**8):08d}"


def bank_code(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


async def funded_bank(http: httpx.AsyncClient, system: str) -> tuple[str, str, str]:
    """A new bank with an account of 100,000.00 in its system's currency, made over HTTP with the
    operator key (a served gateway): (participant id, API key, account id)."""
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    code = bank_code("HK" if system == "FPS" else "CN")
    created = await http.post(
        "/v1/participants", json={"participant_id": code, "name": code, "system": system}, headers=operator
    )
    assert created.status_code == 201, created.text
    account = await http.post(
        "/v1/accounts",
        json={
            "participant_id": code,
            "holder_name": "CHAN Tai Man" if system == "FPS" else "张小明",
            "currency": "HKD" if system == "FPS" else "CNY",
            "opening_balance": "100000.00",
        },
        headers=operator,
    )
    assert account.status_code == 201, account.text
    return code, str(created.json()["api_key"]), str(account.json()["account_id"])


def fresh_bic(country: str) -> str:
    """A fresh test BIC (location code ending in 0) in `country`, unique across a run's banks."""
    letters = "".join(random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
    return f"{letters}{country}{random.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}0XXX"


UETR = re.compile(r"(<(?:\w+:)?UETR>)[0-9a-f-]{36}(</)")


def fresh_uetr(xml: str) -> str:
    """The message with a new UETR wherever it has one: a bank's UETR names one payment for good."""
    return UETR.sub(lambda m: f"{m.group(1)}{uuid.uuid4()}{m.group(2)}", xml)


TRANSACTION = re.compile(r"<((?:\w+:)?)CdtTrfTxInf>.*</\1CdtTrfTxInf>", re.S)
NB_OF_TXS = re.compile(r"(<(?:\w+:)?NbOfTxs>)[^<]*(</)")


def several(xml: str, *changes: dict[str, str]) -> str:
    """The pacs.008 with one transaction per `changes`, each its own transaction with those
    replacements, and NbOfTxs their number (a CtrlSum is left as it was)."""
    found = TRANSACTION.search(xml)
    assert found is not None
    made = []
    for change in changes:
        transaction = found.group(0)
        for old, new in change.items():
            assert old in transaction, old
            transaction = transaction.replace(old, new)
        made.append(transaction)
    xml = xml[: found.start()] + "".join(made) + xml[found.end() :]
    return NB_OF_TXS.sub(lambda m: f"{m.group(1)}{len(changes)}{m.group(2)}", xml, count=1)


def iso_reasons(response: httpx.Response) -> list[str]:
    """Every reason's AddtlInf in a pacs.002, each reason's pieces joined."""
    report = pacs002.parse(response.content).fito_fipmt_sts_rpt
    reasons = [r for g in report.orgnl_grp_inf_and_sts for r in g.sts_rsn_inf]
    reasons += [r for t in report.tx_inf_and_sts for r in t.sts_rsn_inf]
    return ["".join(r.addtl_inf) for r in reasons]


def iso_rejection(response: httpx.Response, status: int) -> list[str]:
    """Assert a pacs.002 refusing the whole message (GrpSts RJCT); return its reason codes."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml"), response.text
    assert "location" not in response.headers
    report = pacs002.parse(response.content).fito_fipmt_sts_rpt
    (group,) = report.orgnl_grp_inf_and_sts
    assert group.grp_sts == "RJCT"
    reasons = list(group.sts_rsn_inf)
    for tx in report.tx_inf_and_sts:
        assert tx.tx_sts == "RJCT"
        reasons += tx.sts_rsn_inf
    assert reasons and all(r.addtl_inf for r in reasons)
    return [r.rsn.cd for r in reasons if r.rsn is not None]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 answer with this status and code; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


@dataclass
class Bank:
    participant_id: str
    system: str
    api_key: str
    bic: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Harness:
    """An in-process gateway on a real database, talking to a real mock_ibps over HTTP."""

    app: FastAPI
    http: httpx.AsyncClient
    clock: FakeClock
    operator: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {OPERATOR_KEY}"})

    @property
    def gw(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    def allow_webhooks(self, *endpoints: str) -> None:
        """Let webhooks reach these host:port pairs (FPSLINK_WEBHOOK_ALLOW), such as a receiver
        started on a free port of 127.0.0.1 after the gateway; read at each registration and delivery."""
        self.gw.settings.webhook_allow = ",".join(endpoints)

    async def bank(self, system: str, *, bic: str | None = None) -> Bank:
        code = bank_code("HK" if system == "FPS" else "CN")
        body = {"participant_id": code, "name": f"Test {code}", "system": system}
        if bic is not None:
            body["bic"] = bic
        response = await self.http.post("/v1/participants", json=body, headers=self.operator)
        assert response.status_code == 201, response.text
        return Bank(code, system, response.json()["api_key"], bic)

    async def account(
        self, bank: Bank, currency: str = "", opening: str = "100000.00", holder: str = ""
    ) -> str:
        currency = currency or ("HKD" if bank.system == "FPS" else "CNY")
        holder = holder or ("CHAN Tai Man" if bank.system == "FPS" else "张小明")
        response = await self.http.post(
            "/v1/accounts",
            json={
                "participant_id": bank.participant_id,
                "holder_name": holder,
                "currency": currency,
                "opening_balance": opening,
            },
            headers=self.operator,
        )
        assert response.status_code == 201, response.text
        account_id: str = response.json()["account_id"]
        return account_id

    async def proxy(self, bank: Bank, account_id: str) -> str:
        number = hk_mobile() if bank.system == "FPS" else cn_mobile()
        response = await self.http.post(
            "/v1/proxies",
            json={"proxy_type": "MOBILE", "proxy_value": number, "account_id": account_id},
            headers=bank.headers,
        )
        assert response.status_code == 201, response.text
        return number

    async def balance(self, account_id: str) -> tuple[str, str]:
        """(balance, held) as the operator sees them."""
        response = await self.http.get(f"/v1/accounts/{account_id}", headers=self.operator)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["balance"], body["held"]

    async def pay(
        self,
        bank: Bank,
        *,
        debtor: str,
        amount: str,
        currency: str,
        proxy: str | None = None,
        creditor_account: str | None = None,
        key: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        creditor = (
            {"proxy_type": "MOBILE", "proxy_value": proxy}
            if proxy is not None
            else {"account_id": creditor_account}
        )
        body = {
            "debtor_account_id": debtor,
            "creditor": creditor,
            "amount": amount,
            "currency": currency,
            "purpose": "FAMILY_SUPPORT",
            **extra,
        }
        return await self.http.post(
            "/v1/payments",
            json=body,
            headers={**bank.headers, "Idempotency-Key": key or str(uuid.uuid4())},
        )

    async def payment_count(self) -> int:
        count, cursor = 0, None
        while True:
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = (await self.http.get("/v1/payments", params=params, headers=self.operator)).json()
            count += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return count


@dataclass
class IsoWorld:
    """The sample ISO 20022 messages' world (HARBOURHK, HKDEMO0001, a mainland payee's number) made of
    this test's banks: an HK bank with a BIC, another, and a mainland payee with a registered mobile."""

    hk: Bank
    other: Bank
    hk_account: str
    cn_account: str
    number: str
    """The payee's number as the samples write it: +86-13800138000."""

    def fill(self, text: str, bank: Bank | None = None) -> str:
        """A sample message addressed to this world's accounts, as `bank` (the HK bank by default)
        sends it: its BIC, its participant id as member id and as Mojaloop's lower-case FSP id."""
        bank = bank or self.hk
        assert bank.bic is not None
        for old, new in (
            ("HKDEMO0001", self.hk_account),
            ("CNDEMO0002", self.cn_account),
            ("+86-13800138000", self.number),
            ("HRBRHKH0XXX", bank.bic),
            ("HRBRHKH0", bank.bic[:8]),
            ("<MmbId>HARBOURHK</MmbId>", f"<MmbId>{bank.participant_id}</MmbId>"),
            ("<Id>harbourhk</Id>", f"<Id>{bank.participant_id.lower()}</Id>"),
        ):
            text = text.replace(old, new)
        return text


async def iso_world(h: Harness, opening: str = "50000.00") -> IsoWorld:
    hk = await h.bank("FPS", bic=fresh_bic("HK"))
    other = await h.bank("FPS", bic=fresh_bic("HK"))
    cn = await h.bank("IBPS", bic=fresh_bic("CN"))
    hk_account = await h.account(hk, "HKD", opening)
    cn_account = await h.account(cn, "CNY", opening)
    number = await h.proxy(cn, cn_account)
    return IsoWorld(hk, other, hk_account, cn_account, f"+86-{number[3:]}")
