"""What a pacs.008 of many transactions costs: one message of N against N messages of one.

    .venv/bin/python benchmarks/iso20022_batch.py [--transactions 100] [--rounds 3] [--workers 1]

On PostgreSQL at 127.0.0.1:5432 (`FPSLINK_BENCH_POSTGRES`), in fresh databases `fpslink_bench_iso_gw`
and `fpslink_bench_iso_ibps` (dropped at the end unless `--keep`): mock_ibps and `fpslink serve
--workers N` on 127.0.0.1, an HK bank with a BIC and a mainland bank opened through the API, an
account each. Every round pays `--transactions` northbound payments of 10.00 HKD to the mainland
account, each with its own EndToEndId and UETR, three ways:

1. **one message** of all of them (`POST /v1/iso20022/pacs.008`, NbOfTxs N);
2. **N messages at once**, one transaction each, all sent together (over N connections);
3. **N messages in turn**, one transaction each, each sent when the last was answered.

Printed for each: the wall seconds until the last answer, the payments settled, and the CPU seconds
the gateway's workers used; then the median of each over the rounds. The message's size and the
gateway's time to read and check it (`fpslink.iso20022` in-process, no database) are printed once.
Every request has a time-out and every loop a bound; the exit status is 1 if a payment did not settle,
2 if another benchmark holds the lock that `throughput.py` takes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.throughput import (  # noqa: E402
    HOST,
    LOG_DIR,
    process_cpu_s,
    running_fpslink,
    take_lock,
    worker_pids,
)

GW_DB, IBPS_DB = "fpslink_bench_iso_gw", "fpslink_bench_iso_ibps"
BIC = "BNCHHKH0XXX"
AMOUNT = "10.00"
TIMEOUT_S = 120.0

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">
  <FIToFICstmrCdtTrf>
    <GrpHdr>
      <MsgId>{msg_id}</MsgId>
      <CreDtTm>2026-06-22T12:00:00+08:00</CreDtTm>
      <NbOfTxs>{count}</NbOfTxs>
      <SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>
    </GrpHdr>
"""
TRANSACTION = """    <CdtTrfTxInf>
      <PmtId>
        <InstrId>{ref}</InstrId>
        <EndToEndId>{ref}</EndToEndId>
        <UETR>{uetr}</UETR>
      </PmtId>
      <IntrBkSttlmAmt Ccy="HKD">{amount}</IntrBkSttlmAmt>
      <ChrgBr>SLEV</ChrgBr>
      <Dbtr><Nm>CHAN Tai Man</Nm></Dbtr>
      <DbtrAcct><Id><Othr><Id>{debtor}</Id></Othr></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BICFI>{bic}</BICFI></FinInstnId></DbtrAgt>
      <CdtrAgt><FinInstnId><Nm>Mainland bank</Nm></FinInstnId></CdtrAgt>
      <Cdtr><Nm>ZHANG Xiao Ming</Nm></Cdtr>
      <CdtrAcct><Id><Othr><Id>{creditor}</Id></Othr></Id></CdtrAcct>
      <Purp><Cd>FAMI</Cd></Purp>
      <RmtInf><Ustrd>Invoice {ref}</Ustrd></RmtInf>
    </CdtTrfTxInf>
"""
TAIL = """  </FIToFICstmrCdtTrf>
</Document>
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=100, help="payments per way (1-1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three ways (1-10)")
    parser.add_argument("--workers", type=int, default=1, help="gateway workers (1-8)")
    parser.add_argument("--port", type=int, default=28750, help="the gateway's port (mock_ibps the next)")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    checks = {
        "--transactions": 1 <= args.transactions <= 1000,
        "--rounds": 1 <= args.rounds <= 10,
        "--workers": 1 <= args.workers <= 8,
        "--port": 1024 <= args.port <= 65_000,
    }
    for name, ok in checks.items():
        if not ok:
            parser.error(f"{name} is out of range")
    return args


def message(count: int, *, debtor: str, creditor: str) -> bytes:
    """A pacs.008 of `count` transactions, each with references of its own."""
    tag = uuid.uuid4().hex[:12]
    transactions = "".join(
        TRANSACTION.format(
            ref=f"B-{tag}-{n}", uetr=uuid.uuid4(), amount=AMOUNT, debtor=debtor, bic=BIC, creditor=creditor
        )
        for n in range(1, count + 1)
    )
    return (HEAD.format(msg_id=f"M-{tag}", count=count) + transactions + TAIL).encode()


@dataclass
class Way:
    name: str
    seconds: list[float]
    settled: list[int]
    cpu_s: list[float]


def settled_in(report: bytes) -> int:
    from fpslink.iso20022 import pacs002

    return sum(t.tx_sts == "ACSC" for t in pacs002.parse(report).fito_fipmt_sts_rpt.tx_inf_and_sts)


def read_cost(count: int) -> tuple[int, float]:
    """The message's size and the seconds the gateway takes to read, check and map it (best of 3)."""
    from fpslink.iso20022 import consistency, inbound, pacs008
    from fpslink.iso20022.apphdr import Party

    body = message(count, debtor="HKBENCH0001", creditor="CNBENCH0001")
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        read = inbound.read(body)
        pacs008.credit_transfers(read, max_transactions=count)
        consistency.check(read, caller=Party("BENCHHK", BIC), link=Party("FPSLINK", "FPSLHKH0XXX"))
        best = min(best, time.perf_counter() - started)
    return len(body), best


async def main(args: argparse.Namespace) -> int:
    import httpx

    lock = take_lock()
    if lock is None:
        print(f"a benchmark holds {LOG_DIR / 'run.lock'}; not starting")
        return 2
    count = args.transactions
    size, read_s = read_cost(count)
    env = {"FPSLINK_ISO20022_MAX_TRANSACTIONS": str(max(count, 1)), "FPSLINK_RATE_LIMIT_QUOTA": "1000000"}
    databases = (GW_DB, IBPS_DB)
    ways = [Way(name, [], [], []) for name in ("one message", "messages at once", "messages in turn")]
    async with running_fpslink(
        databases, args.port, args.workers, env, log_prefix="iso-", keep=args.keep
    ) as run:
        operator = {"Authorization": f"Bearer {run.operator_key}"}
        limits = httpx.Limits(max_connections=count + 4)
        async with httpx.AsyncClient(
            base_url=f"http://{HOST}:{args.port}", timeout=TIMEOUT_S, limits=limits
        ) as http:
            keys: dict[str, str] = {}
            for code, system, bic in (("BENCHHK", "FPS", BIC), ("BENCHCN", "IBPS", None)):
                body = {
                    "participant_id": code,
                    "name": code,
                    "system": system,
                    **({"bic": bic} if bic else {}),
                }
                created = await http.post("/v1/participants", json=body, headers=operator)
                created.raise_for_status()
                keys[code] = created.json()["api_key"]
            opened = []
            for code, currency in (("BENCHHK", "HKD"), ("BENCHCN", "CNY")):
                body = {
                    "participant_id": code,
                    "holder_name": "BENCH",
                    "currency": currency,
                    "opening_balance": "100000000.00",
                }
                response = await http.post("/v1/accounts", json=body, headers=operator)
                response.raise_for_status()
                opened.append(response.json()["account_id"])
            debtor, creditor = opened
            headers = {"Authorization": f"Bearer {keys['BENCHHK']}", "Content-Type": "application/xml"}
            pids = worker_pids(run.gateway)

            async def send(body: bytes) -> int:
                response = await http.post("/v1/iso20022/pacs.008", content=body, headers=headers)
                if response.status_code not in (201, 202):
                    print(f"  answer {response.status_code}: {response.text[:300]}")
                return settled_in(response.content) if response.status_code in (201, 202) else 0

            await send(message(1, debtor=debtor, creditor=creditor))  # warm up: caches, prepared statements
            for number in range(1, args.rounds + 1):
                for way in ways:
                    if way.name == "one message":
                        bodies = [message(count, debtor=debtor, creditor=creditor)]
                    else:
                        bodies = [message(1, debtor=debtor, creditor=creditor) for _ in range(count)]
                    cpu_before = process_cpu_s(pids)
                    started = time.perf_counter()
                    if way.name == "messages in turn":
                        settled = [await send(body) for body in bodies]
                    else:
                        settled = list(await asyncio.gather(*(send(body) for body in bodies)))
                    way.seconds.append(time.perf_counter() - started)
                    way.cpu_s.append(process_cpu_s(pids) - cpu_before)
                    way.settled.append(sum(settled))
                    print(
                        f"round {number}, {way.name}: {way.seconds[-1]:.3f} s, {way.settled[-1]} settled, "
                        f"gateway CPU {way.cpu_s[-1]:.3f} s"
                    )
    print(
        f"\n{count} transactions; the message is {size / 1024:.1f} KiB and takes "
        f"{read_s * 1000:.1f} ms to read and check"
    )
    for way in ways:
        print(
            f"{way.name:>17}: median {statistics.median(way.seconds):.3f} s wall, "
            f"{statistics.median(way.cpu_s):.3f} s gateway CPU, "
            f"settled {min(way.settled)}-{max(way.settled)} of {count}"
        )
    return 0 if all(min(way.settled) == count for way in ways) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
